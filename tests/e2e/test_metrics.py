"""Prometheus metrics as an operator sees them: lag before and after a backlog is consumed,
probes, and `kedro stream lag`."""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from kedro_stream.testing.brokers import create_topic
from tests.conftest import KEDRO, kedro
from tests.kafka_helpers import committed, produce, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
BACKLOG = 300


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def lag(url: str, group: str, topic: str) -> float | None:
    labels = (("group", group), ("partition", "0"), ("topic", topic))
    return scrape(url).get(("kedro_stream_consumer_lag", labels))


def status(url: str) -> int:
    try:
        return urllib.request.urlopen(url, timeout=5).status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.unsupported_broker(
    "tansu", "its high watermark is the start of the last batch + 1, so lag reads wrong"
)
def test_lag_is_the_backlog_before_and_zero_after(kafka_broker, mini_project: Path) -> None:
    run = uuid.uuid4().hex[:8]
    source, group, bootstrap = f"lag-in-{run}", f"lag-{run}", kafka_broker.bootstrap_servers
    params = mini_project / "conf" / "base" / "parameters.yml"
    params.write_text(params.read_text().replace("seconds: 0.0", "seconds: 1.5"))
    stream = {
        "namespace": "slow",
        "pipeline": "slow",
        "group_id": group,
        "input": {"topics": [source], "dataset": "batch"},
        "outputs": {"echoed": {"topic": f"lag-out-{run}"}},
        "batch": {"max_size": 100, "max_wait_ms": 200},
    }
    config = {"kafka": {"consumer": {"fetch.wait.max.ms": 20}}, "metrics": {"lag_interval_s": 0.2}}
    config["streams"] = {"slow": stream}
    (mini_project / "conf" / "base" / "stream.yml").write_text(yaml.safe_dump(config))
    create_topic(kafka_broker, source, partitions=1)
    produce(bootstrap, source, [b'{"id": 1, "kind": "a", "amount": 1.0}'] * BACKLOG)

    out = mini_project / "consume.out"
    service = subprocess.Popen(
        [
            KEDRO,
            "stream",
            "consume",
            "--topic",
            source,
            "--bootstrap-servers",
            bootstrap,
            "--metrics-port",
            "0",
        ],
        cwd=mini_project,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"},
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
        base = url.removesuffix("/metrics")
        # Before the first 1.5 s batch commits, the whole backlog is lag.
        wait_until(lambda: lag(url, group, source) is not None, 30, "a lag sample")
        assert lag(url, group, source) == BACKLOG
        assert committed(bootstrap, group, source) == {}
        assert status(f"{base}/healthz") == 200
        wait_until(lambda: status(f"{base}/readyz") == 200, 30, "readiness")
        # Consumed and committed: lag falls to zero.
        wait_until(lambda: lag(url, group, source) == 0, 60, "lag 0")
        assert committed(bootstrap, group, source) == {0: BACKLOG}
        samples = scrape(url)
        assert (
            samples[("kedro_stream_records_consumed_total", (("group", group), ("topic", source)))]
            == BACKLOG
        )
        assert (
            samples[
                (
                    "kedro_stream_committed_offset",
                    (("group", group), ("partition", "0"), ("topic", source)),
                )
            ]
            == BACKLOG
        )
    finally:
        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=30) == 0, out.read_text()[-2000:]

    table = kedro(
        mini_project,
        "stream",
        "lag",
        "--group",
        group,
        "--topic",
        source,
        "--bootstrap-servers",
        bootstrap,
    ).stdout
    row = next(line for line in table.splitlines() if source in line)
    assert [cell.strip() for cell in row.strip("│ ").split("│")] == [source, "0", "300", "300", "0"]
