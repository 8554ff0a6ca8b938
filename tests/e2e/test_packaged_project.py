"""The example as a deployment ships it: the plugin's and the example's wheels and the conf
archive (``make package``), installed in a new virtualenv and run from a folder that holds the
conf archive and nothing else: no source tree, no ``pyproject.toml``, no ``schemas/``.

The new virtualenv gets the two wheels; their dependencies (Kedro, confluent-kafka, pandas...)
come from the running environment through a ``.pth`` file, so nothing is downloaded. The source
tree is not on its path: the test checks both packages are imported from the wheels.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.kafka_helpers import read_topic
from tests.stream_helpers import configure, create_input, topics

pytestmark = [pytest.mark.packaging, pytest.mark.e2e, pytest.mark.integration]

PACKAGE = "payment_fraud"
COUNT = 300
#: A wheel build, a training run or a consume of a few hundred records takes seconds.
STEP_TIMEOUT_S = 180


def _run(*command: str | Path, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(c) for c in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _package(conf: Path, dist: Path) -> Path:
    """What ``make package`` does, into ``dist``: both wheels, then the conf archive as
    ``kedro package`` writes it (the conf folder itself, ``local/*.yml`` left out)."""
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "wheel", "--quiet"]
    flags = ["--no-deps", "--no-build-isolation", "--wheel-dir", dist]
    _run(*pip, *flags, REPO, REPO / "deploy" / "example-wheel", cwd=REPO, env=dict(os.environ))
    archive = dist / f"conf-{PACKAGE}.tar.gz"
    _run("tar", "--exclude=local/*.yml", "-czf", archive, "conf", cwd=conf.parent, env={})
    return archive


def _virtualenv(path: Path) -> Path:
    """A new virtualenv seeing the running environment's packages after its own: not the
    source tree, so kedro_stream and payment_fraud can only come from the wheels."""
    venv.EnvBuilder(with_pip=True).create(path)
    python = path / "bin" / "python"
    env = {"PATH": os.environ["PATH"]}
    own = _run(
        python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=path, env=env
    )
    (Path(own.strip()) / "borrowed.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return python


def test_a_packaged_project_streams_from_a_folder_holding_only_its_conf_archive(
    kafka_broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The user's project: the example's conf, pointed at this test's topics, and with state
    # queries whose token only a mounted credentials.yml (read from the environment) gives.
    names = topics("pkg")
    source = tmp_path / "source"
    shutil.copytree(REPO / "conf", source / "conf")
    configure(source, names)
    stream_yml = source / "conf" / "base" / "stream.yml"
    config = yaml.safe_load(stream_yml.read_text())
    config["metrics"] = {"state_queries": {"enabled": True, "credentials": "state_queries"}}
    stream_yml.write_text(yaml.safe_dump(config))

    dist = tmp_path / "dist"
    archive = _package(source / "conf", dist)
    python = _virtualenv(tmp_path / "venv")
    wheels = sorted(dist.glob("*.whl"))
    assert [w.name.split("-")[0] for w in wheels] == ["kedro_stream", PACKAGE]
    _run(
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--no-index",
        *wheels,
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"]},
    )

    app = tmp_path / "app"
    app.mkdir()
    shutil.copy(archive, app)
    secret = tmp_path / "secret" / "credentials.yml"
    secret.parent.mkdir()
    secret.write_text("state_queries:\n  token: ${oc.env:STATE_QUERIES_TOKEN}\n")
    bin_ = python.parent
    env = {
        "PATH": f"{bin_}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "KEDRO_DISABLE_TELEMETRY": "1",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers,
        "KEDRO_STREAM_PACKAGE": PACKAGE,
        "KEDRO_STREAM_CONF_SOURCE": archive.name,
        "STATE_QUERIES_TOKEN": "t0ken",
        "COLUMNS": "200",
    }
    assert sorted(p.name for p in app.iterdir()) == [archive.name]

    where = _run(
        python,
        "-c",
        f"import kedro_stream, {PACKAGE} as p; print(kedro_stream.__file__); print(p.__file__)",
        cwd=app,
        env=env,
    )
    site_packages = (tmp_path / "venv").resolve()
    assert all(Path(line).resolve().is_relative_to(site_packages) for line in where.split())

    # Kedro's own packaged run makes the data and the model (python -m <package>).
    _run(
        python,
        "-m",
        PACKAGE,
        "--conf-source",
        archive.name,
        "--pipelines",
        "data_generation,training",
        cwd=app,
        env=env,
    )
    assert (app / "data" / "06_models" / "fraud_model.pkl").is_file()

    # Without the mounted credentials the token is missing: compile says so.
    failed = subprocess.run(
        [bin_ / "kedro-stream", "compile"],
        cwd=app,
        env=env,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_S,
        check=False,
    )
    assert failed.returncode == 1
    assert "state_queries" in failed.stderr
    env["KEDRO_STREAM_CREDENTIALS"] = str(secret)
    compiled = _run(bin_ / "kedro-stream", "compile", cwd=app, env=env)
    assert "ok" in compiled.splitlines()[-1]
    # Kedro's own CLI has the commands too, though no project is around them.
    through_kedro = _run(python, "-m", "kedro", "stream", "compile", cwd=app, env=env)
    assert "ok" in through_kedro.splitlines()[-1]

    create_input(kafka_broker, names, partitions=2)
    sent = [
        json.loads(line)
        for line in (app / "data/01_raw/payments.jsonl").read_text().splitlines()[:COUNT]
    ]
    produced = _run(
        bin_ / "kedro-stream",
        "produce",
        "--topic",
        names["input"],
        "--file",
        "data/01_raw/payments.jsonl",
        "--count",
        str(COUNT),
        cwd=app,
        env=env,
    )
    assert f"delivered {COUNT} of {COUNT} records" in produced

    done = _run(
        bin_ / "kedro-stream",
        "consume",
        "--topic",
        names["input"],
        "--max-messages",
        str(COUNT),
        cwd=app,
        env=env,
    )

    assert f"committed {COUNT} records" in done
    assert "0 dead-lettered" in done
    scores = read_topic(kafka_broker.bootstrap_servers, names["scores"], expect=COUNT)
    assert sorted(json.loads(m.value())["payment_id"] for m in scores) == sorted(
        p["payment_id"] for p in sent
    )
    # The folder holds the conf archive and what the runs wrote: data, with the state stores.
    assert sorted(p.name for p in app.iterdir()) == sorted([archive.name, "data"])
