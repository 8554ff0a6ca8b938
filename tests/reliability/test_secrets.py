"""No secret from credentials.yml reaches logs, command output, metrics or exceptions.

The test brokers offer no SASL listener, so the clients' authentication fails: that is the path
whose logs (librdkafka's and ours) most often carry configuration, and it is checked too."""

from __future__ import annotations

import os
import re
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.conftest import KEDRO
from tests.kafka_helpers import committed, produce_payments, wait_until
from tests.stream_helpers import configure, consume_command, payments, topics

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
SECRETS = {"sasl.password": "S3cr3t-sasl-7f1c", "ssl.key.password": "S3cr3t-key-92ab"}


def test_secrets_never_leave(kafka_broker, stream_project: Path) -> None:
    names = topics("secret")
    configure(stream_project, names)
    stream_yml = stream_project / "conf" / "base" / "stream.yml"
    config = yaml.safe_load(stream_yml.read_text())
    config["kafka"]["credentials"] = "kafka"
    config["kafka"]["client"] = {"sasl.mechanism": "PLAIN", "security.protocol": "SASL_PLAINTEXT"}
    stream_yml.write_text(yaml.safe_dump(config))
    credentials = {"kafka": {"sasl.username": "svc-scoring", **SECRETS}}
    (stream_project / "conf" / "local" / "credentials.yml").write_text(yaml.safe_dump(credentials))
    produce_payments(kafka_broker.bootstrap_servers, names["input"], payments(stream_project, 50))

    out = stream_project / "consume.out"
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
    service = subprocess.Popen(
        consume_command(
            names,
            kafka_broker.bootstrap_servers,
            "--idle-timeout-s",
            "5",
            "--metrics-port",
            "0",
        ),
        cwd=stream_project,
        env=env,
        stdout=out.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(lambda: "metrics=http" in out.read_text(), 60, "the metrics line")
        url = next(
            line.split("=", 1)[1]
            for line in out.read_text().splitlines()
            if line.startswith("metrics=http")
        )
        metrics = urllib.request.urlopen(url, timeout=5).read().decode()
        service.wait(timeout=90)
    finally:
        if service.poll() is None:
            service.kill()
            service.wait(timeout=10)
    compiled = subprocess.run(
        [KEDRO, "stream", "compile", "--namespace", "scoring"],
        cwd=stream_project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seen = "\n".join([out.read_text(), metrics, compiled.stdout, compiled.stderr])
    # The authentication path ran (the broker has no SASL listener) and let nothing through.
    assert re.search(r"SASL|[Aa]uthenticat", out.read_text()), out.read_text()[-2000:]
    assert committed(kafka_broker.bootstrap_servers, names["group"], names["input"]) == {}
    assert "svc-scoring" not in metrics
    for secret in SECRETS.values():
        assert secret not in seen
    assert "kedro_stream_build_info" in metrics  # the scrape itself worked
