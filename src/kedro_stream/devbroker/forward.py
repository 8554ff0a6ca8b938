"""A TCP forwarder: what puts a mock broker behind a port of the user's choosing (``--port``).

librdkafka's mock brokers listen on ephemeral ports and have no option to pick one, so the broker
process listens on the chosen port itself and relays every connection to the mock broker's real
port. Hand-rolled on threads and blocking sockets because it is the whole need: a few loopback
connections from development clients, relayed byte for byte. The stdlib has no forwarder, asyncio
would add an event loop thread for no gain at this scale, and no package is worth a dependency for
a hundred lines.
"""

from __future__ import annotations

import selectors
import socket
import threading
from types import TracebackType

__all__ = ["Forwarder"]

_CHUNK = 65536


class Forwarder:
    """Relays each connection accepted on ``listener`` to ``target``, until :meth:`close`.

    A connection the target refuses is closed at once, so a client sees a broker that is down
    (``broker_down``) as down through the forwarder too.
    """

    def __init__(self, listener: socket.socket, target: tuple[str, int]) -> None:
        self._listener = listener
        self._target = target
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._closed = False
        # close() writes here to wake the accept loop: closing a socket another thread waits on
        # in accept() does not wake it on every platform.
        self._wake_read, self._wake_write = socket.socketpair()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    def start(self) -> Forwarder:
        """Start relaying connections, on a daemon thread."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop accepting, and cut every relayed connection (their threads then exit)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            connections, self._open = self._open, set()
        self._wake_write.send(b"x")
        if self._thread.is_alive():
            self._thread.join()
        for connection in connections:
            _shutdown(connection, socket.SHUT_RDWR)  # wakes the pump threads blocked in recv
        for sock in (self._listener, self._wake_read, self._wake_write):
            sock.close()

    def __enter__(self) -> Forwarder:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_read, selectors.EVENT_READ)
            while True:
                ready = {key.fileobj for key, _ in selector.select()}
                if self._wake_read in ready:
                    return
                try:
                    client, _ = self._listener.accept()
                except OSError:  # the client gave up between select and accept
                    continue
                self._relay(client)

    def _relay(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self._target)
        except OSError:
            client.close()
            return
        for sock in (client, upstream):
            # Kafka requests and responses are small messages: no Nagle delay on either leg.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            if self._closed:
                client.close()
                upstream.close()
                return
            self._open |= {client, upstream}
        remaining = [2]  # the second pump to finish closes both sockets
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(
                target=self._pump, args=(source, sink, client, upstream, remaining), daemon=True
            ).start()

    def _pump(
        self,
        source: socket.socket,
        sink: socket.socket,
        client: socket.socket,
        upstream: socket.socket,
        remaining: list[int],
    ) -> None:
        """Copy ``source`` to ``sink`` until EOF, then pass the EOF on (a half-close); an error
        on either side cuts the whole connection."""
        try:
            while data := source.recv(_CHUNK):
                sink.sendall(data)
            _shutdown(sink, socket.SHUT_WR)
        except OSError:
            for sock in (client, upstream):
                _shutdown(sock, socket.SHUT_RDWR)
        with self._lock:
            remaining[0] -= 1
            if remaining[0]:
                return
            self._open -= {client, upstream}
        client.close()
        upstream.close()


def _shutdown(sock: socket.socket, how: int) -> None:
    try:
        sock.shutdown(how)
    except OSError:  # already disconnected
        pass
