"""The ``--port`` forwarder relays bytes and connection ends both ways, on plain sockets (the Kafka
clients through it are tests/integration's)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from kedro_stream.devbroker.forward import Forwarder

TIMEOUT_S = 5.0


def read_to_eof(sock: socket.socket) -> bytes:
    """Everything until the peer's EOF; a hang fails at the socket timeout."""
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


@pytest.fixture
def echo() -> Iterator[tuple[str, int]]:
    """A server echoing each connection until EOF, then closing it."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:  # the fixture closed the server
                return
            with connection:
                while data := connection.recv(4096):
                    connection.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()
    server.shutdown(socket.SHUT_RDWR)
    server.close()


def connect(forwarder_port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", forwarder_port), timeout=TIMEOUT_S)


def test_relays_both_ways_and_passes_the_end_of_the_stream_on(echo: tuple[str, int]) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    with Forwarder(listener, echo), connect(listener.getsockname()[1]) as client:
        payload = bytes(range(256)) * 1000  # larger than one recv
        client.sendall(payload)
        client.shutdown(socket.SHUT_WR)  # the echo server sees EOF only through the forwarder
        assert read_to_eof(client) == payload


def test_a_refused_target_closes_the_client() -> None:
    with socket.socket() as nobody:  # bound, not listening: connections to it are refused
        nobody.bind(("127.0.0.1", 0))
        listener = socket.create_server(("127.0.0.1", 0))
        with Forwarder(listener, nobody.getsockname()), connect(listener.getsockname()[1]) as c:
            assert read_to_eof(c) == b""


def test_close_cuts_open_connections_and_stops_accepting(echo: tuple[str, int]) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    forwarder = Forwarder(listener, echo).start()
    with connect(port) as client:
        client.sendall(b"ping")
        assert client.recv(4) == b"ping"
        forwarder.close()
        assert read_to_eof(client) == b""
    with pytest.raises(ConnectionRefusedError):
        connect(port)
