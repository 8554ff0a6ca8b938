"""``kedro stream compile`` on the mini project: with no flags it compiles what stream.yml
declares (each stream's namespace, in its pipeline, with its state roles); ``--pipeline`` and
``--namespace`` choose instead; without stream.yml, the ``__default__`` pipeline's namespaces.
Each test boots Kedro, so they are few."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import yaml
from click.testing import CliRunner, Result

from kedro_stream.cli.compile import compile_command

STREAMS = {
    "tally": {
        "namespace": "tally",
        "pipeline": "tally",
        "group_id": "tally",
        "input": {"topics": ["events"], "dataset": "events"},
        "outputs": {"features": {"topic": "features"}},
        "state": {
            "activity": {"input": "activity", "updates": "activity_updates", "key": "account"}
        },
    },
    "scoring": {
        "namespace": "ns",
        "group_id": "scoring",
        "input": {"topics": ["batches"], "dataset": "batch"},
        "outputs": {"checked": {"topic": "checked"}},
        "ignore_outputs": ["enriched", "summary"],
    },
}


def compile_in(project: Path, *args: str) -> Result:
    metadata = SimpleNamespace(project_path=project, package_name="mini_project")
    return CliRunner().invoke(compile_command, list(args), obj=metadata)


def with_streams(project: Path) -> Path:
    stream_yml = project / "conf" / "base" / "stream.yml"
    stream_yml.write_text(yaml.safe_dump({"streams": STREAMS}, sort_keys=False))
    return project


def tables(output: str) -> list[str]:
    return re.findall(r"^namespace: (\S+) *$", output, flags=re.MULTILINE)


def roles(output: str) -> dict[str, str]:
    rows = (line.strip("│ ").split("│") for line in output.splitlines() if line.startswith("│"))
    return {cells[0].strip(): cells[1].strip() for cells in rows if len(cells) > 1}


def test_no_flags_compile_each_stream_s_namespace_in_its_pipeline(mini_project: Path) -> None:
    """Before, it compiled __default__: namespace None and tpl too, and tally's state as plain
    input and output."""
    done = compile_in(with_streams(mini_project))

    assert done.exit_code == 0, done.output
    assert tables(done.output) == ["tally", "ns"]
    found = roles(done.output)
    assert found["tally.activity"] == found["tally.activity_updates"] == "state"
    assert found["events"] == "input"
    assert "stream tally:" in done.output and "stream scoring:" in done.output


def test_flags_choose_the_pipeline_and_namespaces(mini_project: Path) -> None:
    project = with_streams(mini_project)

    default = compile_in(project, "--namespace", "tpl")
    tally = compile_in(project, "--pipeline", "tally")

    assert (default.exit_code, tally.exit_code) == (0, 0), default.output + tally.output
    assert tables(default.output) == ["tpl"]
    assert tables(tally.output) == ["tally"]
    assert roles(tally.output)["tally.activity"] == "state"  # stream.yml's roles still apply


def test_without_stream_yml_the_default_pipeline_is_compiled(mini_project: Path) -> None:
    done = compile_in(mini_project)

    assert done.exit_code == 0, done.output
    assert tables(done.output) == ["None", "ns", "tpl"]
    assert "No stream.yml: only the namespaces were compiled" in done.output
