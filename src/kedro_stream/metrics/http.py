"""``/metrics``, ``/healthz`` and ``/readyz`` on one port, for Prometheus and Kubernetes probes.

prometheus-client's own server serves only ``/metrics``; the probes need two more paths, so
this wraps its exposition in a small stdlib HTTP server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

Probe = Callable[[], tuple[bool, str]]
PATHS = ("/metrics", "/healthz", "/readyz")
# The root names the paths: someone who opens the server in a browser finds the probes.
_INDEX = "".join(f"{path}\n" for path in PATHS).encode()


class MetricsServer:
    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        port: int,
        healthy: Probe,
        ready: Probe,
        host: str = "0.0.0.0",  # scraped from outside the container
    ) -> None:
        routes: dict[str, Callable[[], tuple[int, str, bytes]]] = {
            "/": lambda: (200, "text/plain; charset=utf-8", _INDEX),
            "/metrics": lambda: (200, CONTENT_TYPE_LATEST, generate_latest(registry)),
            "/healthz": lambda: _probe(healthy),
            "/readyz": lambda: _probe(ready),
        }

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                route = routes.get(self.path.split("?", 1)[0])
                status, content_type, body = route() if route else (404, "text/plain", b"")
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # scrapes are not news
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="kedro-stream-metrics", daemon=True
        )

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _probe(check: Probe) -> tuple[int, str, bytes]:
    ok, reason = check()
    return (200 if ok else 503), "text/plain; charset=utf-8", (reason + "\n").encode()
