"""The broker process: a mock cluster and its control endpoint, served from a process of their own.

:func:`serve` is the process itself (``python -m kedro_stream.devbroker``, ``kedro-stream broker``,
``kedro stream broker``: one command, :mod:`~kedro_stream.devbroker.cli`):
the first stdout line is ``bootstrap.servers=HOST:PORT[,...]``, the second
``control=127.0.0.1:PORT``; it then serves until SIGTERM or SIGINT and exits 0.
:class:`EmbeddedBroker` is the parent's side: it spawns that process, reads both lines and stops
it. Clients reach the brokers over TCP like any Kafka cluster; tests and tools in other processes
inject faults through the control endpoint with ``FaultInjector`` (``devbroker.control``).

Topics the mock auto-creates (on a metadata request or a first produce) always get
:data:`~kedro_stream.devbroker.cluster.AUTO_CREATE_PARTITIONS` partitions: librdkafka has no API to
change that. ``--partitions`` therefore applies to the ``--topic`` topics created at start, and
``FaultInjector.create_topic`` makes a topic with any count.
"""

from __future__ import annotations

import errno
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import IO

from kedro_stream.devbroker.cluster import AUTO_CREATE_PARTITIONS, MockCluster
from kedro_stream.devbroker.control import (
    LOOPBACK,
    ControlServer,
    EmbeddedBrokerError,
    FaultInjector,
)
from kedro_stream.devbroker.forward import Forwarder

__all__ = ["EmbeddedBroker", "serve"]

BOOTSTRAP_PREFIX = "bootstrap.servers="
CONTROL_PREFIX = "control="
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_MAX_PORT = 65535
#: What ``python -m`` runs: this package's ``__main__``.
_MODULE = __name__.rpartition(".")[0]


# --------------------------------------------------------------------------- hosting process


def serve(
    *,
    brokers: int = 1,
    partitions: int = AUTO_CREATE_PARTITIONS,
    topics: Sequence[str] = (),
    port: int | None = None,
    control_port: int = 0,
    initial_rebalance_delay_ms: int = 0,
    exit_with_parent: bool = False,
) -> None:
    """Host a mock cluster and its control endpoint in this process until SIGTERM or SIGINT.

    ``port``: serve broker ``i`` on ``127.0.0.1:port+i-1`` through a :class:`Forwarder` (the mock
    listens on ephemeral ports only); None: clients connect to the mock's own ports.

    Call from the main thread. The stop signals are blocked before any thread starts and taken
    with ``sigwait``, so no librdkafka or server thread can swallow them.
    """
    if partitions != AUTO_CREATE_PARTITIONS and not topics:
        raise EmbeddedBrokerError(
            f"partitions={partitions} applies only to topics created at start (--topic): the mock "
            f"auto-creates topics with {AUTO_CREATE_PARTITIONS} partitions and librdkafka cannot "
            "change that; create other topics with FaultInjector.create_topic"
        )
    if port is not None and not 1 <= port <= _MAX_PORT - brokers + 1:
        raise EmbeddedBrokerError(
            f"--port {port} with {brokers} brokers needs ports {port}..{port + brokers - 1}, "
            f"beyond 1..{_MAX_PORT}"
        )
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        with ExitStack() as stack:
            # Taken before the cluster starts: a port in use fails fast, with nothing to undo.
            listeners = (
                [stack.enter_context(_listen(p)) for p in range(port, port + brokers)]
                if port is not None
                else []
            )
            cluster = MockCluster(brokers, initial_rebalance_delay_ms)
            stack.callback(cluster.close)
            for topic in topics:
                cluster.create_topic(topic, partitions)
            bootstrap = cluster.bootstrap_servers
            if listeners:
                bootstrap = _forward(cluster, listeners, stack)
            try:
                server = ControlServer(control_port, cluster)
            except OSError as exc:
                port_named = f"control port {control_port}"
                raise _cannot_listen(exc, port_named, "--control-port") from None
            stack.callback(server.server_close)
            threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            ).start()
            if exit_with_parent:
                threading.Thread(target=_stop_at_stdin_eof, daemon=True).start()
            print(f"{BOOTSTRAP_PREFIX}{bootstrap}", flush=True)  # noqa: T201
            print(f"{CONTROL_PREFIX}{LOOPBACK}:{server.server_port}", flush=True)  # noqa: T201
            signal.sigwait(_STOP_SIGNALS)
            server.shutdown()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)


def _listen(port: int) -> socket.socket:
    try:
        return socket.create_server((LOOPBACK, port))
    except OSError as exc:
        raise _cannot_listen(exc, f"port {port}", "--port") from None


def _cannot_listen(error: OSError, port: str, option: str) -> EmbeddedBrokerError:
    """A port of ``option`` that cannot be listened on, in words: not an ``OSError``'s."""
    if error.errno == errno.EADDRINUSE:
        return EmbeddedBrokerError(
            f"{port} is in use: stop what listens there, choose another {option}, or leave it "
            "out for any free port"
        )
    return EmbeddedBrokerError(f"cannot listen on {port}: {error.strerror or error}")


def _forward(cluster: MockCluster, listeners: Sequence[socket.socket], stack: ExitStack) -> str:
    """Put broker ``i`` behind ``listeners[i-1]`` and advertise that address in metadata, so
    clients that follow metadata come through the forwarder too; returns the bootstrap list."""
    public = []
    real = cluster.bootstrap_servers.split(",")  # in broker-id order
    for broker_id, (listener, address) in enumerate(zip(listeners, real, strict=True), start=1):
        host, _, real_port = address.rpartition(":")
        stack.enter_context(Forwarder(listener, (host, int(real_port))))
        public_port = listener.getsockname()[1]
        cluster.advertise(broker_id, LOOPBACK, public_port)
        public.append(f"{LOOPBACK}:{public_port}")
    return ",".join(public)


def _stop_at_stdin_eof() -> None:
    """The parent holds our stdin open: EOF means it died, and a broker must not outlive it."""
    # os.read on the descriptor: a daemon thread blocked inside sys.stdin's buffered reader holds
    # its lock, which makes interpreter shutdown abort the process.
    while os.read(sys.stdin.fileno(), 4096):
        pass
    os.kill(os.getpid(), signal.SIGTERM)


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
        """The broker process's id, for tests that signal or kill it."""
        return self._process.pid

    @classmethod
    def start(
        cls,
        brokers: int = 1,
        partitions: int = AUTO_CREATE_PARTITIONS,
        topics: Sequence[str] = (),
        startup_timeout_s: float = 20.0,
    ) -> EmbeddedBroker:
        """Spawn ``python -m kedro_stream.devbroker`` and wait for its two address lines."""
        command = [sys.executable, "-m", _MODULE, "--exit-with-parent"]
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
