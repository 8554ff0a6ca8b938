"""Prometheus metrics as an operator sees them: lag before and after a backlog is consumed,
probes, and `kedro stream lag`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from kedro_stream.testing.brokers import create_topic
from tests.conftest import KEDRO, kedro, run_kedro
from tests.kafka_helpers import committed, produce, wait_until
from tests.stream_helpers import GROUP_PROTOCOLS

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
    except urllib.error.URLError:
        return 0  # not listening (yet)


def produce_backlog(bootstrap: str, topic: str) -> None:
    produce(bootstrap, topic, [b'{"id": 1, "kind": "a", "amount": 1.0}'] * BACKLOG)


@dataclass
class SlowService:
    """A `kedro stream consume` process whose batches (of 100) wait for a gate: each runs until
    :meth:`release` is called, so a test can look at the service while a batch is in flight."""

    process: subprocess.Popen[str]
    output: Path
    url: str  # its /metrics
    group: str
    source: str
    gate: Path

    def release(self) -> None:
        """Let every batch, this one and the next, finish."""
        self.gate.touch()

    def stop(self) -> None:
        self.release()  # a batch still at its gate would hold the shutdown
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()  # never outlive the test
            self.process.wait(timeout=10)
            raise
        assert code == 0, self.output.read_text()[-2000:]


def start_slow_service(
    kafka_broker,
    project: Path,
    metrics_port: int = 0,
    backlog: bool = True,
    group_protocol: str = "classic",
) -> SlowService:
    """Starts the service; with ``backlog`` the records are produced before it starts."""
    run = uuid.uuid4().hex[:8]
    source, group, bootstrap = f"lag-in-{run}", f"lag-{run}", kafka_broker.bootstrap_servers
    gate = project / f"gate-{run}"
    params = project / "conf" / "base" / "parameters.yml"
    params.write_text(params.read_text().replace('gate: ""', f"gate: {gate}"))
    stream = {
        "namespace": "slow",
        "pipeline": "slow",
        "group_id": group,
        "input": {"topics": [source], "dataset": "batch"},
        "outputs": {"echoed": {"topic": f"lag-out-{run}"}},
        "batch": {"max_size": 100, "max_wait_ms": 200},
    }
    # The example's classic session settings: dropped for the lag reader too under KIP-848.
    consumer = {
        "fetch.wait.max.ms": 20,
        "session.timeout.ms": 6000,
        "group.protocol": group_protocol,
    }
    config = {"kafka": {"consumer": consumer}, "metrics": {"lag_interval_s": 0.2}}
    config["streams"] = {"slow": stream}
    (project / "conf" / "base" / "stream.yml").write_text(yaml.safe_dump(config))
    create_topic(kafka_broker, source, partitions=1)
    if backlog:
        produce_backlog(bootstrap, source)

    out = project / "consume.out"
    command = ["consume", "--topic", source, "--bootstrap-servers", bootstrap]
    process = subprocess.Popen(
        [KEDRO, "stream", *command, "--metrics-port", str(metrics_port)],
        cwd=project,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"},
        stdout=out.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(lambda: "metrics=http" in out.read_text(), 60, "the metrics line")
    except AssertionError:
        process.kill()
        process.wait(timeout=10)
        raise
    url = next(
        line.split("=", 1)[1]
        for line in out.read_text().splitlines()
        if line.startswith("metrics=http")
    )
    return SlowService(process, out, url, group, source, gate)


@pytest.mark.unsupported_broker(
    "tansu", "its high watermark is the start of the last batch + 1, so lag reads wrong"
)
@pytest.mark.parametrize("group_protocol", GROUP_PROTOCOLS)
def test_lag_is_the_backlog_before_and_zero_after(
    kafka_broker, mini_project: Path, group_protocol: str
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    service = start_slow_service(kafka_broker, mini_project, group_protocol=group_protocol)
    url, group, source = service.url, service.group, service.source
    try:
        base = url.removesuffix("/metrics")
        # While the first batch waits at its gate, nothing is committed: the backlog is lag.
        wait_until(lambda: lag(url, group, source) == BACKLOG, 30, "the backlog as lag")
        assert committed(bootstrap, group, source) == {}
        assert status(f"{base}/healthz") == 200
        wait_until(lambda: status(f"{base}/readyz") == 200, 30, "readiness")
        printed = service.output.read_text().splitlines()  # each probe's URL, as a line of its own
        assert {f"healthz={base}/healthz", f"readyz={base}/readyz"} <= set(printed)
        with urllib.request.urlopen(f"{base}/") as index:  # the root names the paths
            assert index.read().decode().split() == ["/metrics", "/healthz", "/readyz"]
        service.release()
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
        service.stop()

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def promql(prometheus: str, query: str) -> list[dict]:
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    answer = json.loads(urllib.request.urlopen(url, timeout=5).read())
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


@pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="needs the Prometheus server (Debian package prometheus; .ci/run installs it)",
)
@pytest.mark.unsupported_broker(
    "tansu", "its high watermark is the start of the last batch + 1, so lag reads wrong"
)
def test_a_real_prometheus_scrapes_the_lag(
    kafka_broker, mini_project: Path, tmp_path: Path
) -> None:
    port, metrics_port = _free_port(), _free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {
                        "job_name": "kedro-stream",
                        "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}],
                    }
                ],
            }
        )
    )
    prometheus = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("w"),
    )
    api = f"http://127.0.0.1:{port}"
    service = None
    try:
        wait_until(lambda: status(f"{api}/-/ready") == 200, 30, "Prometheus ready")
        service = start_slow_service(
            kafka_broker, mini_project, metrics_port=metrics_port, backlog=False
        )
        query = f'kedro_stream_consumer_lag{{group="{service.group}",topic="{service.source}"}}'

        def scraped_lag() -> float | None:
            result = promql(api, query)
            return float(result[0]["value"][1]) if result else None

        # Scrapes are under way (empty topic: lag 0) before the backlog arrives ...
        wait_until(lambda: scraped_lag() == 0, 60, "a scraped lag of 0")
        assert [float(r["value"][1]) for r in promql(api, 'up{job="kedro-stream"}')] == [1.0]
        produce_backlog(kafka_broker.bootstrap_servers, service.source)
        # ... Prometheus sees all of it as lag while the first batch waits at its gate ...
        wait_until(lambda: scraped_lag() == BACKLOG, 30, "the backlog scraped as lag")
        service.release()
        # ... and 0 again once every batch is committed.
        wait_until(lambda: scraped_lag() == 0, 60, "scraped lag back to 0", every_s=0.5)
        total = promql(api, f'sum(kedro_stream_records_consumed_total{{group="{service.group}"}})')
        assert float(total[0]["value"][1]) == BACKLOG
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)
        if service is not None:
            service.stop()


def test_a_metrics_port_in_use_is_one_error_line(kafka_broker, mini_project: Path) -> None:
    """Not an OSError's traceback: the address taken and the ways out, in one line."""
    stream = {
        "namespace": "slow",
        "pipeline": "slow",
        "group_id": "metrics-port-in-use",
        "input": {"topics": ["metrics-port-in"], "dataset": "batch"},
        "outputs": {"echoed": {"topic": "metrics-port-out"}},
    }
    config = {"kafka": {"bootstrap_servers": kafka_broker.bootstrap_servers}}
    (mini_project / "conf" / "base" / "stream.yml").write_text(
        yaml.safe_dump({**config, "streams": {"slow": stream}})
    )
    with socket.create_server(("0.0.0.0", 0)) as taken:
        port = taken.getsockname()[1]
        done = run_kedro(
            mini_project,
            *("stream", "consume", "--topic", "metrics-port-in", "--idle-timeout-s", "5"),
            *("--metrics-port", str(port)),
            timeout=120,
        )

    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert [line for line in done.stderr.splitlines() if line.startswith("Error:")] == [
        f"Error: cannot serve /metrics on 0.0.0.0:{port}: the port is in use; choose another "
        "(--metrics-port, or metrics.port in stream.yml), or --metrics-port 0 for any free port"
    ]
