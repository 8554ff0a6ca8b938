"""``/metrics``, ``/healthz`` and ``/readyz`` on one port, for Prometheus and Kubernetes probes,
and, when turned on, ``/state/<name>/<key>``: a key's current state row (interactive queries).

prometheus-client's own server serves only ``/metrics``; the probes need two more paths, so
this wraps its exposition in a small stdlib HTTP server.
"""

from __future__ import annotations

import errno
import hmac
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import unquote

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import SecretStr

from kedro_stream.errors import KedroStreamError

Probe = Callable[[], tuple[bool, str]]
#: A key's current row (JSON) in a state, or ``None`` when this instance holds none.
StateLookup = Callable[[str, str], bytes | None]
PATHS = ("/metrics", "/healthz", "/readyz")
STATE_PREFIX = "/state/"
_TEXT = "text/plain; charset=utf-8"


class MetricsPortError(KedroStreamError):
    """The server cannot listen where it was asked to: a port in use, most often."""


@dataclass(frozen=True)
class StateQueries:
    """What ``/state/<name>/<key>`` answers with, and the token a caller must present."""

    lookup: StateLookup
    token: SecretStr


class _Reply(NamedTuple):
    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


class MetricsServer:
    """``/metrics``, ``/healthz``, ``/readyz`` (and ``/state`` when enabled) on one port, served
    from a daemon thread so that a scrape never waits for the loop."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        port: int,
        healthy: Probe,
        ready: Probe,
        host: str = "0.0.0.0",  # scraped from outside the container
        state_queries: StateQueries | None = None,  # None: /state answers 404
    ) -> None:
        # The root names the paths: someone who opens the server in a browser finds them.
        listed = PATHS + ((f"{STATE_PREFIX}<name>/<key>",) if state_queries else ())
        index = "".join(f"{path}\n" for path in listed).encode()
        routes: dict[str, Callable[[], _Reply]] = {
            "/": lambda: _Reply(200, _TEXT, index),
            "/metrics": lambda: _Reply(200, CONTENT_TYPE_LATEST, generate_latest(registry)),
            "/healthz": lambda: _probe(healthy),
            "/readyz": lambda: _probe(ready),
        }

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path.startswith(STATE_PREFIX):
                    reply = _state(state_queries, path, self.headers.get("Authorization"))
                else:
                    route = routes.get(path)
                    reply = route() if route else _Reply(404, _TEXT, b"")
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:  # scrapes are not news
                pass

        try:
            self._server = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise MetricsPortError(_cannot_listen(host, port, exc)) from None
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="kedro-stream-metrics", daemon=True
        )

    @property
    def port(self) -> int:
        """The port served (the one picked when asked for port 0)."""
        return self._server.server_address[1]

    def start(self) -> None:
        """Serve, on a daemon thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()


def _cannot_listen(host: str, port: int, error: OSError) -> str:
    where = f"cannot serve /metrics on {host}:{port}"
    if error.errno == errno.EADDRINUSE:
        return (
            f"{where}: the port is in use; choose another (--metrics-port, or metrics.port in "
            "stream.yml), or --metrics-port 0 for any free port"
        )
    return f"{where}: {error.strerror or error}; check metrics.host and metrics.port in stream.yml"


def _probe(check: Probe) -> _Reply:
    ok, reason = check()
    return _Reply(200 if ok else 503, _TEXT, (reason + "\n").encode())


def _state(queries: StateQueries | None, path: str, authorization: str | None) -> _Reply:
    """The token is checked before the path is looked at: without it, nothing tells which
    states or keys exist."""
    if queries is None:
        return _Reply(404, _TEXT, b"state queries are off (metrics.state_queries.enabled)\n")
    if not _authorized(authorization, queries.token):
        headers = (("WWW-Authenticate", "Bearer"),)
        return _Reply(401, _TEXT, b"a bearer token is required\n", headers)
    name, _, key = path.removeprefix(STATE_PREFIX).partition("/")
    row = queries.lookup(unquote(name), unquote(key)) if name and key else None
    if row is None:
        return _Reply(404, _TEXT, b"no such state, or no row of the key on this instance\n")
    return _Reply(200, "application/json", row)


def _authorized(authorization: str | None, token: SecretStr) -> bool:
    scheme, _, given = (authorization or "").partition(" ")
    # http.server decodes headers as latin-1: encoding back gives the bytes that were sent.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode("latin-1"), token.get_secret_value().encode()
    )
