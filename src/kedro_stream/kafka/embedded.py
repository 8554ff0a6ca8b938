"""The embedded development/test broker: librdkafka's mock cluster hosted in its own process.

Run ``python -m kedro_stream.kafka.embedded [--brokers N] [--partitions P] [--topic T ...]
[--control-port PORT]``. The first stdout line is ``bootstrap.servers=HOST:PORT[,...]``, the second
``control=127.0.0.1:PORT``; the process then serves until SIGTERM or SIGINT and exits 0.

Clients reach the brokers over TCP like any Kafka cluster. Tests and tools in other processes
inject faults through the control endpoint with :class:`FaultInjector`. The endpoint is a few lines
of stdlib ``http.server`` (POST ``/<method>`` with a JSON object of arguments, answered with
``{"result": ...}`` or ``{"error": ...}``) so neither side needs a web framework.

Topics the mock auto-creates (on a metadata request or a first produce) always get
:data:`~kedro_stream.kafka.mock_api.AUTO_CREATE_PARTITIONS` partitions: librdkafka has no API to
change that. ``--partitions`` therefore applies to the ``--topic`` topics created at start, and
:meth:`FaultInjector.create_topic` makes a topic with any count.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from kedro_stream.errors import KedroStreamError
from kedro_stream.kafka.mock_api import (
    AUTO_CREATE_PARTITIONS,
    ApiKey,
    CoordinatorKeyType,
    MockCluster,
    MockClusterError,
    MockRequest,
)

__all__ = [
    "ApiKey",
    "EmbeddedBroker",
    "EmbeddedBrokerError",
    "FaultInjector",
    "MockRequest",
    "main",
    "run_foreground",
    "serve",
]

BOOTSTRAP_PREFIX = "bootstrap.servers="
CONTROL_PREFIX = "control="
_LOOPBACK = "127.0.0.1"
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class EmbeddedBrokerError(KedroStreamError):
    """The embedded broker did not start, or refused a control call."""


# --------------------------------------------------------------------------- control endpoint


class _ControlService:
    """What the control endpoint can do: the mock cluster's fault injection, plus ``reset``."""

    _CLUSTER_METHODS = frozenset(
        {
            "create_topic",
            "broker_down",
            "broker_up",
            "set_rtt",
            "push_broker_request_errors",
            "broker_error_stack_count",
            "clear_request_errors",
            "partition_set_leader",
            "coordinator_set",
            "group_initial_rebalance_delay_ms",
            "start_request_tracking",
            "stop_request_tracking",
            "clear_requests",
        }
    )

    def __init__(self, cluster: MockCluster, initial_rebalance_delay_ms: int) -> None:
        self._cluster = cluster
        self._initial_rebalance_delay_ms = initial_rebalance_delay_ms
        self._errored_api_keys: set[int] = set()

    def call(self, method: str, args: dict[str, Any]) -> Any:
        if method in self._CLUSTER_METHODS:
            return getattr(self._cluster, method)(**args)
        if method in {"push_request_errors", "get_requests", "reset"}:
            return getattr(self, method)(**args)
        raise LookupError(f"unknown method {method!r}")

    def push_request_errors(self, api_key: int, errors: Sequence[int]) -> None:
        self._cluster.push_request_errors(api_key, errors)
        self._errored_api_keys.add(api_key)

    def get_requests(self) -> list[dict[str, int]]:
        return [asdict(request) for request in self._cluster.get_requests()]

    def reset(self) -> None:
        """Undo what tests commonly change, so one broker can serve a whole test session."""
        self._cluster.broker_up(-1)
        self._cluster.set_rtt(-1, 0)
        for api_key in self._errored_api_keys:
            self._cluster.clear_request_errors(api_key)
        self._errored_api_keys.clear()
        self._cluster.stop_request_tracking()
        self._cluster.clear_requests()
        self._cluster.group_initial_rebalance_delay_ms(self._initial_rebalance_delay_ms)


class _ControlServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, service: _ControlService) -> None:
        super().__init__((_LOOPBACK, port), _ControlHandler)
        self.service = service


class _ControlHandler(BaseHTTPRequestHandler):
    server: _ControlServer

    def do_POST(self) -> None:
        method = self.path.strip("/")
        try:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            args = json.loads(body or b"{}")
            if not isinstance(args, dict):
                raise TypeError("arguments must be a JSON object")
            result = self.server.service.call(method, args)
        except LookupError as exc:
            self._reply(HTTPStatus.NOT_FOUND, {"error": str(exc)})
        except (TypeError, ValueError, MockClusterError) as exc:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": f"{method}: {exc}"})
        else:
            self._reply(HTTPStatus.OK, {"result": result})

    def _reply(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: a test may call the endpoint thousands of times."""


class FaultInjector:
    """Client of an embedded broker's control endpoint; usable from any process.

    Broker ids start at 1; -1 means every broker where the mock allows it (down, up, rtt).
    Error codes are Kafka's (``confluent_kafka.KafkaError.NOT_ENOUGH_REPLICAS`` and friends).
    """

    def __init__(self, address: str, timeout_s: float = 10.0) -> None:
        host, _, port = address.rpartition(":")
        self.address = address
        self._host, self._port, self._timeout_s = host, int(port), timeout_s

    def _call(self, method: str, **args: Any) -> Any:
        # http.client rather than urllib: a loopback call must never go through an HTTP proxy.
        connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout_s)
        try:
            connection.request(
                "POST", f"/{method}", json.dumps(args), {"Content-Type": "application/json"}
            )
            response = connection.getresponse()
            payload = json.loads(response.read())
        except OSError as exc:
            raise EmbeddedBrokerError(f"control endpoint {self.address}: {exc}") from exc
        finally:
            connection.close()
        if response.status != HTTPStatus.OK:
            raise EmbeddedBrokerError(payload["error"])
        return payload["result"]

    def create_topic(self, topic: str, partitions: int, replication_factor: int = 1) -> None:
        self._call(
            "create_topic",
            topic=topic,
            partitions=partitions,
            replication_factor=replication_factor,
        )

    def broker_down(self, broker_id: int) -> None:
        """Disconnect clients and refuse connections; partition leaders do not move."""
        self._call("broker_down", broker_id=broker_id)

    def broker_up(self, broker_id: int) -> None:
        self._call("broker_up", broker_id=broker_id)

    def set_rtt(self, broker_id: int, rtt_ms: int) -> None:
        self._call("set_rtt", broker_id=broker_id, rtt_ms=rtt_ms)

    def push_request_errors(self, api_key: int, errors: Sequence[int]) -> None:
        """Fail the next ``len(errors)`` requests of ``api_key`` (to any broker), in order."""
        self._call("push_request_errors", api_key=api_key, errors=list(errors))

    def push_broker_request_errors(
        self,
        broker_id: int,
        api_key: int,
        errors: Sequence[int],
        rtts_ms: Sequence[int] | None = None,
    ) -> None:
        """Answer the next requests of ``api_key`` to one broker with ``errors`` (0: success),
        each after its ``rtts_ms`` delay; these win over :meth:`push_request_errors`."""
        self._call(
            "push_broker_request_errors",
            broker_id=broker_id,
            api_key=api_key,
            errors=list(errors),
            rtts_ms=list(rtts_ms) if rtts_ms is not None else [0] * len(errors),
        )

    def broker_error_stack_count(self, broker_id: int, api_key: int) -> int:
        """Errors pushed for one broker and ``api_key`` that no request took yet: 0 once met."""
        return self._call("broker_error_stack_count", broker_id=broker_id, api_key=api_key)

    def clear_request_errors(self, api_key: int) -> None:
        """Drop the errors :meth:`push_request_errors` queued that no request consumed yet."""
        self._call("clear_request_errors", api_key=api_key)

    def partition_set_leader(self, topic: str, partition: int, broker_id: int) -> None:
        self._call("partition_set_leader", topic=topic, partition=partition, broker_id=broker_id)

    def coordinator_set(self, key_type: CoordinatorKeyType, key: str, broker_id: int) -> None:
        """Pin the coordinator of a ``"group"`` id or a ``"transaction"``-al id."""
        self._call("coordinator_set", key_type=key_type, key=key, broker_id=broker_id)

    def group_initial_rebalance_delay_ms(self, delay_ms: int) -> None:
        self._call("group_initial_rebalance_delay_ms", delay_ms=delay_ms)

    def start_request_tracking(self) -> None:
        self._call("start_request_tracking")

    def stop_request_tracking(self) -> None:
        self._call("stop_request_tracking")

    def clear_requests(self) -> None:
        self._call("clear_requests")

    def get_requests(self) -> list[MockRequest]:
        """Requests received while tracking was on, in arrival order."""
        return [MockRequest(**request) for request in self._call("get_requests")]

    def reset(self) -> None:
        """All brokers up, no RTT, no queued cluster-wide errors, tracking off and cleared, the
        start-up rebalance delay. Topics, leaders, coordinators and per-broker errors remain."""
        self._call("reset")


# --------------------------------------------------------------------------- hosting process


def serve(
    *,
    brokers: int = 1,
    partitions: int = AUTO_CREATE_PARTITIONS,
    topics: Sequence[str] = (),
    control_port: int = 0,
    initial_rebalance_delay_ms: int = 0,
    exit_with_parent: bool = False,
) -> None:
    """Host a mock cluster and its control endpoint in this process until SIGTERM or SIGINT.

    Call from the main thread. The stop signals are blocked before any thread starts and taken
    with ``sigwait``, so no librdkafka or server thread can swallow them.
    """
    if partitions != AUTO_CREATE_PARTITIONS and not topics:
        raise EmbeddedBrokerError(
            f"partitions={partitions} applies only to topics created at start (--topic): the mock "
            f"auto-creates topics with {AUTO_CREATE_PARTITIONS} partitions and librdkafka cannot "
            "change that; create other topics with FaultInjector.create_topic"
        )
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        cluster = MockCluster(brokers)
        try:
            cluster.group_initial_rebalance_delay_ms(initial_rebalance_delay_ms)
            for topic in topics:
                cluster.create_topic(topic, partitions)
            server = _ControlServer(
                control_port, _ControlService(cluster, initial_rebalance_delay_ms)
            )
            threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            ).start()
            if exit_with_parent:
                threading.Thread(target=_stop_at_stdin_eof, daemon=True).start()
            print(f"{BOOTSTRAP_PREFIX}{cluster.bootstrap_servers}", flush=True)  # noqa: T201
            print(f"{CONTROL_PREFIX}{_LOOPBACK}:{server.server_port}", flush=True)  # noqa: T201
            signal.sigwait(_STOP_SIGNALS)
            server.shutdown()
            server.server_close()
        finally:
            cluster.close()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)


def _stop_at_stdin_eof() -> None:
    """The parent holds our stdin open: EOF means it died, and a broker must not outlive it."""
    # os.read on the descriptor: a daemon thread blocked inside sys.stdin's buffered reader holds
    # its lock, which makes interpreter shutdown abort the process.
    while os.read(sys.stdin.fileno(), 4096):
        pass
    os.kill(os.getpid(), signal.SIGTERM)


def run_foreground(
    brokers: int = 1,
    partitions: int = AUTO_CREATE_PARTITIONS,
    topics: Sequence[str] = (),
    control_port: int = 0,
) -> None:
    """Serve an embedded broker from this process until Ctrl-C or SIGTERM (``kedro stream
    broker``); prints the bootstrap line, then the control line."""
    serve(brokers=brokers, partitions=partitions, topics=topics, control_port=control_port)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kedro_stream.kafka.embedded",
        description="Serve librdkafka's mock Kafka cluster on loopback until SIGTERM/SIGINT.",
    )
    parser.add_argument("--brokers", type=_positive_int, default=1)
    parser.add_argument(
        "--partitions",
        type=_positive_int,
        default=AUTO_CREATE_PARTITIONS,
        help="partitions of each --topic (auto-created topics always get "
        f"{AUTO_CREATE_PARTITIONS})",
    )
    parser.add_argument("--topic", dest="topics", action="append", default=[])
    parser.add_argument("--control-port", type=int, default=0, help="0: any free port")
    parser.add_argument("--initial-rebalance-delay-ms", type=int, default=0)
    parser.add_argument(
        "--exit-with-parent", action="store_true", help="exit when stdin reaches EOF"
    )
    args = parser.parse_args(argv)
    try:
        serve(
            brokers=args.brokers,
            partitions=args.partitions,
            topics=args.topics,
            control_port=args.control_port,
            initial_rebalance_delay_ms=args.initial_rebalance_delay_ms,
            exit_with_parent=args.exit_with_parent,
        )
    except (KedroStreamError, OSError) as exc:
        parser.exit(1, f"{parser.prog}: error: {exc}\n")
    return 0


# --------------------------------------------------------------------------- parent side


class EmbeddedBroker:
    """An embedded broker child process; stop it with :meth:`stop` or a ``with`` block.

    The child exits by itself if this process dies (it watches its stdin pipe), so a crashed or
    killed test run leaves no broker behind.
    """

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        stderr: IO[bytes],
        bootstrap_servers: str,
        control_address: str,
    ) -> None:
        self._process = process
        self._stderr = stderr
        self.bootstrap_servers = bootstrap_servers
        self.control_address = control_address
        self.faults = FaultInjector(control_address)

    @property
    def pid(self) -> int:
        return self._process.pid

    @classmethod
    def start(
        cls,
        brokers: int = 1,
        partitions: int = AUTO_CREATE_PARTITIONS,
        topics: Sequence[str] = (),
        startup_timeout_s: float = 20.0,
    ) -> EmbeddedBroker:
        """Spawn ``python -m kedro_stream.kafka.embedded`` and wait for its two address lines."""
        command = [sys.executable, "-m", __name__, "--exit-with-parent"]
        command += ["--brokers", str(brokers), "--partitions", str(partitions)]
        for topic in topics:
            command += ["--topic", topic]
        # The child must import this very package even when it is not installed.
        package_root = str(Path(__file__).resolve().parents[2])
        pythonpath = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
        stderr = tempfile.TemporaryFile()  # a file, not a pipe: nobody has to drain it
        stdout_read, stdout_write = os.pipe()
        with os.fdopen(stdout_read, "rb", buffering=0) as stdout:
            try:
                process = subprocess.Popen(
                    command,
                    stdin=subprocess.PIPE,
                    stdout=stdout_write,
                    stderr=stderr,
                    env={**os.environ, "PYTHONPATH": pythonpath},
                )
            finally:  # the child holds its own copy: EOF must come when *it* closes stdout
                os.close(stdout_write)
            try:
                bootstrap, control = _read_addresses(stdout, startup_timeout_s)
            except EmbeddedBrokerError as exc:
                process.kill()
                process.wait()
                stderr.seek(0)
                detail = stderr.read().decode(errors="replace").strip() or "(empty)"
                stderr.close()
                if process.stdin is not None:
                    process.stdin.close()
                raise EmbeddedBrokerError(
                    f"the embedded broker did not start ({exc}; exit code {process.returncode})"
                    f"\ncommand: {' '.join(command)}\nits stderr:\n{detail}"
                ) from None
        return cls(process, stderr, bootstrap, control)

    def stop(self, timeout_s: float = 5.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout_s``; returns the exit code (0: clean stop)."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._stderr.close()
        return self._process.returncode

    def __enter__(self) -> EmbeddedBroker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _read_addresses(stdout: IO[bytes], timeout_s: float) -> tuple[str, str]:
    """The bootstrap and control lines, waiting at most ``timeout_s``.

    Lines before the bootstrap line are skipped: an import may log to stdout before ours runs.
    """
    deadline = time.monotonic() + timeout_s
    output = b""
    with selectors.DefaultSelector() as selector:
        selector.register(stdout, selectors.EVENT_READ)
        while True:
            lines = output.decode(errors="replace").split("\n")[:-1]  # complete lines only
            starts = [i for i, line in enumerate(lines) if line.startswith(BOOTSTRAP_PREFIX)]
            if starts and len(lines) > starts[0] + 1:
                bootstrap, control = lines[starts[0] : starts[0] + 2]
                if not control.startswith(CONTROL_PREFIX):
                    raise EmbeddedBrokerError(f"expected {CONTROL_PREFIX}..., got {control!r}")
                return (
                    bootstrap.removeprefix(BOOTSTRAP_PREFIX),
                    control.removeprefix(CONTROL_PREFIX),
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EmbeddedBrokerError(f"no address lines within {timeout_s} s")
            if selector.select(remaining):
                chunk = stdout.read(4096)
                if not chunk:
                    raise EmbeddedBrokerError("it closed its stdout before the address lines")
                output += chunk


if __name__ == "__main__":
    raise SystemExit(main())
