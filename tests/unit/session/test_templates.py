"""Catalog templates on their own: the ``itertime_params`` resolver leaves a placeholder at boot,
a template knows which names it needs and renders a dataset per run, and a run's values are
checked against every template of its namespace (``run_id`` always allowed)."""

from __future__ import annotations

from typing import Any

import pytest
from omegaconf import OmegaConf

from kedro_stream.errors import ItertimeParamsError
from kedro_stream.session.templates import (
    RUN_ID,
    Template,
    check_itertime_params,
    register_resolver,
)


def template(data: Any, name: str = "tpl.rates") -> Template:
    found = Template.from_config(name, {"type": "MemoryDataset", "data": data})
    assert found is not None
    return found


def test_the_resolver_leaves_a_placeholder_for_each_run() -> None:
    register_resolver()
    config = OmegaConf.create(
        {
            "rates": "data/rates/${itertime_params:day,2026-01-01}.json",
            "report": "data/${itertime_params:region}/${itertime_params:run_id}.json",
        }
    )

    assert OmegaConf.to_container(config, resolve=True) == {
        "rates": "data/rates/${oc.select:day,2026-01-01}.json",
        "report": (
            "data/${oc.select:region,__kedro_stream_required__}/"
            "${oc.select:run_id,__kedro_stream_required__}.json"
        ),
    }


def test_an_entry_without_placeholders_is_no_template() -> None:
    assert Template.from_config("rates", {"type": "MemoryDataset", "data": "${x}"}) is None
    assert Template.from_config("rates", None) is None


def test_a_template_knows_its_required_and_optional_names() -> None:
    found = template(
        {
            "path": "${oc.select:region,__kedro_stream_required__}/${oc.select:day,2026-01-01}",
            "nested": [{"n": "${oc.select:n,}"}, "${oc.select:run_id,__kedro_stream_required__}"],
            "plain": "no placeholder",
        }
    )

    assert found.required == {"region", "n"}
    assert found.optional == {"day"}
    assert found.names == {"region", "n", "day"}  # run_id is always there: never asked for


def test_render_substitutes_values_and_defaults_anywhere_in_the_entry() -> None:
    found = template(
        {
            "path": "data/${oc.select:region,eu}/${oc.select:day,2026-01-01}.json",
            "count": "${oc.select:n,3}",
            "list": ["${oc.select:region,eu}"],
        }
    )

    rendered = found.render({"region": "us", "n": 5, RUN_ID: "r1"}).load()

    assert rendered == {"path": "data/us/2026-01-01.json", "count": 5, "list": ["us"]}
    assert found.render({}).load()["count"] == 3  # the default, typed as written


def test_each_render_starts_from_the_entry_again() -> None:
    found = template({"path": "${oc.select:region,eu}"})

    assert found.render({"region": "us"}).load() == {"path": "us"}
    assert found.render({}).load() == {"path": "eu"}
    assert found.config["data"] == {"path": "${oc.select:region,eu}"}


def test_a_value_that_cannot_be_rendered_is_an_itertime_params_error() -> None:
    found = template({"path": "${oc.select:region,eu}"})

    with pytest.raises(ItertimeParamsError, match=r"Cannot render '\$\{oc.select:region,eu\}' of "):
        found.render({"region": object()})


TEMPLATES = (
    template({"path": "${oc.select:region,__kedro_stream_required__}"}),
    template({"path": "${oc.select:day,2026-01-01}"}, name="tpl.report"),
)


@pytest.mark.parametrize(
    "given",
    [{"region": "eu"}, {"region": "eu", "day": "2026-02-01"}, {"region": "eu", RUN_ID: "r1"}],
)
def test_values_for_known_names_with_every_required_one_pass(given: dict[str, Any]) -> None:
    check_itertime_params("tpl", TEMPLATES, given)


def test_an_unknown_name_is_refused_naming_the_valid_ones() -> None:
    with pytest.raises(ItertimeParamsError) as raised:
        check_itertime_params("tpl", TEMPLATES, {"region": "eu", "dya": "x"})

    assert str(raised.value) == (
        "Unknown itertime params 'dya' for namespace 'tpl'; "
        "its templates use 'day', 'region', 'run_id'."
    )


def test_a_missing_required_name_is_refused() -> None:
    with pytest.raises(ItertimeParamsError) as raised:
        check_itertime_params("tpl", TEMPLATES, {"day": "2026-02-01"})

    assert str(raised.value) == (
        "Missing itertime params 'region' for namespace 'tpl' (they have no default in the "
        "catalog); its templates use 'day', 'region', 'run_id'."
    )


def test_without_templates_only_the_run_id_is_known() -> None:
    check_itertime_params("ns", (), {RUN_ID: "r1"})
    with pytest.raises(ItertimeParamsError, match=r"'day' for namespace 'ns'; its templates use "):
        check_itertime_params("ns", (), {"day": "x"})
