"""The docs cannot drift from what they describe: the generated pages are what their sources
make now, the ``stream.yml`` reference names every key of the models (walked here through
their JSON schema, not through the generator), and the README's links into docs/ land."""

from __future__ import annotations

import re
from typing import Any

import pytest
from markdown.extensions.toc import slugify

from kedro_stream.config.models import StreamFile
from tests.docs.pages import DOCS, PAGES, README, REPO, docs_links

REFERENCE = DOCS / "configuration.md"
_ROW = re.compile(r"^\| `([^`]+)` \|(.*)\|$", re.MULTILINE)
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _placeholders(key: str) -> str:
    """Names the user chooses (``<stream>``) compared as one placeholder."""
    return re.sub(r"<[^>]*>", "<>", key)


def stream_yml_keys() -> dict[str, dict[str, Any]]:
    """Every key of ``stream.yml`` by its full path, nested sections and maps of sections
    (``streams.<>.input.topics``) included, with its JSON schema."""
    schema = StreamFile.model_json_schema(by_alias=True)
    defs = schema["$defs"]

    def target(prop: dict[str, Any]) -> tuple[str | None, str]:
        for option in [prop, *prop.get("anyOf", [])]:
            if "$ref" in option:
                return option["$ref"], ""
            if "$ref" in option.get("additionalProperties", {}):
                return option["additionalProperties"]["$ref"], ".<>"
        return None, ""

    keys: dict[str, dict[str, Any]] = {}

    def walk(model: dict[str, Any], path: str) -> None:
        for name, prop in model["properties"].items():
            key = f"{path}.{name}" if path else name
            keys[key] = prop
            ref, suffix = target(prop)
            nested = defs[ref.rsplit("/", 1)[1]] if ref is not None else {}
            if "properties" in nested:  # a section, not an enum
                walk(nested, key + suffix)

    walk(schema, "")
    return keys


def missing_keys(page: str) -> list[str]:
    """Keys of ``stream.yml`` that no row of the reference ``page`` names."""
    rows = {_placeholders(key) for key, _ in _ROW.findall(page)}
    return [key for key in stream_yml_keys() if key not in rows]


def test_the_generated_pages_are_what_their_sources_make() -> None:
    stale = []
    for generated in PAGES:
        text = (DOCS / generated.page).read_text()
        if generated.fill(text) != text:
            stale.append(f"docs/{generated.page}")
    assert not stale, f"{stale} differ from their sources: run `python -m tests.docs.pages`"


def test_every_stream_yml_key_is_in_the_reference() -> None:
    keys = stream_yml_keys()
    assert {"kafka.schema_registry.url", "streams.<>.outputs.<>.schema"} <= set(keys)
    assert "streams.<>.state.<>.changelog_topic" in keys
    assert missing_keys(REFERENCE.read_text()) == []


def test_a_key_missing_from_the_reference_is_named() -> None:
    page = REFERENCE.read_text()
    row = next(line for line in page.splitlines() if line.startswith("| `streams.<stream>.input."))
    key = _placeholders(row.split("`")[1])
    assert missing_keys(page.replace(row + "\n", "")) == [key]


def test_every_key_has_a_type_a_default_and_a_meaning() -> None:
    rows = _ROW.findall(REFERENCE.read_text())
    assert len(rows) == len(stream_yml_keys())
    for key, rest in rows:
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", rest)]
        assert len(cells) == 3 and all(cells), f"{key}: {cells}"


def test_every_field_of_the_models_has_a_description() -> None:
    undescribed = [key for key, prop in stream_yml_keys().items() if not prop.get("description")]
    assert undescribed == []


def test_readme_links_into_docs_are_made_relative_to_docs() -> None:
    text = "see [Operating it](docs/operating.md#replay-and-reset) or [x](https://example.org/a)"
    expected = "see [Operating it](operating.md#replay-and-reset) or [x](https://example.org/a)"
    assert docs_links(text) == expected


@pytest.mark.parametrize("target", ["#operating-it", "tests/conftest.py"])
def test_a_readme_link_with_no_page_on_the_site_is_refused(target: str) -> None:
    with pytest.raises(ValueError, match="no counterpart on the site"):
        docs_links(f"see [there]({target})")


def _anchors(markdown: str) -> set[str]:
    """The ids MkDocs gives the headings of a page (GitHub makes the same for these)."""
    text = re.sub(r"^```.*?^```", "", markdown, flags=re.MULTILINE | re.DOTALL)
    headings = re.findall(r"^#{1,6} (.+)$", text, flags=re.MULTILINE)
    return {slugify(heading.replace("`", ""), "-") for heading in headings}


def test_the_readme_links_land() -> None:
    links = [link for link in _LINK.findall(README.read_text()) if not re.match(r"[a-z]+://", link)]
    assert any(link.startswith("docs/") for link in links)
    broken = []
    for link in links:
        path, _, anchor = link.partition("#")
        target = REPO / path
        if not target.is_file() or (anchor and anchor not in _anchors(target.read_text())):
            broken.append(link)
    assert broken == []
