"""The control endpoint: a mock cluster's fault API, callable from any process.

Both ends of one small protocol live here. :class:`ControlServer` serves, next to a
:class:`~kedro_stream.devbroker.cluster.MockCluster`, the methods of
:class:`~kedro_stream.devbroker.cluster.FaultApi` and nothing else. :class:`FaultInjector`, its
client, is a ``FaultApi`` too: each of those methods is replaced, when this module loads, by one
that runs it in the broker process. Neither side lists the methods, so they cannot drift apart.

The protocol is a few lines of stdlib ``http.server`` (POST ``/<method>`` with a JSON object of
arguments, answered with ``{"result": ...}`` or ``{"error": ...}``) so neither side needs a web
framework.
"""

from __future__ import annotations

import dataclasses
import functools
import http.client
import inspect
import json
import typing
from collections.abc import Callable, Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kedro_stream.devbroker.cluster import FAULT_METHODS, FaultApi, MockClusterError
from kedro_stream.errors import KedroStreamError

__all__ = ["ControlServer", "EmbeddedBrokerError", "FaultInjector"]

LOOPBACK = "127.0.0.1"


class EmbeddedBrokerError(KedroStreamError):
    """The embedded broker did not start, or refused a control call."""


def _to_json(value: object) -> object:
    """What ``json.dumps`` cannot write itself: dataclasses (results) and any sequence (args)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        return list(value)
    raise TypeError(f"{type(value).__name__} cannot cross the control endpoint")


# --------------------------------------------------------------------------- server side


class ControlServer(ThreadingHTTPServer):
    """Serves the fault API of a cluster (a ``MockCluster``) on ``127.0.0.1:port`` (0: any free
    port); run :meth:`serve_forever` in a thread of its own."""

    daemon_threads = True

    def __init__(self, port: int, cluster: FaultApi) -> None:
        super().__init__((LOOPBACK, port), _ControlHandler)
        self.cluster = cluster

    def call(self, method: str, args: dict[str, Any]) -> Any:
        """Run one fault method on the cluster: only those :data:`FAULT_METHODS` declares."""
        if method not in FAULT_METHODS:
            raise LookupError(f"unknown method {method!r}")
        return getattr(self.cluster, method)(**args)


class _ControlHandler(BaseHTTPRequestHandler):
    server: ControlServer

    def do_POST(self) -> None:
        method = self.path.strip("/")
        try:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            args = json.loads(body or b"{}")
            if not isinstance(args, dict):
                raise TypeError("arguments must be a JSON object")
            result = self.server.call(method, args)
        except LookupError as exc:
            self._reply(HTTPStatus.NOT_FOUND, {"error": str(exc)})
        except (TypeError, ValueError, MockClusterError) as exc:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": f"{method}: {exc}"})
        else:
            self._reply(HTTPStatus.OK, {"result": result})

    def _reply(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, default=_to_json).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: a test may call the endpoint thousands of times."""


# --------------------------------------------------------------------------- client side


class FaultInjector(FaultApi):
    """Client of an embedded broker's control endpoint; usable from any process.

    Every :class:`~kedro_stream.devbroker.cluster.FaultApi` method (``broker_down``, ``set_rtt``,
    ``push_request_errors``, ``get_requests``, ``reset``, ...) runs in the broker process, on its
    cluster; a call it refuses raises :class:`EmbeddedBrokerError`.
    """

    def __init__(self, address: str, timeout_s: float = 10.0) -> None:
        host, _, port = address.rpartition(":")
        self.address = address
        self._host, self._port, self._timeout_s = host, int(port), timeout_s

    def _post(self, method: str, **args: Any) -> Any:
        # http.client rather than urllib: a loopback call must never go through an HTTP proxy.
        connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout_s)
        try:
            connection.request(
                "POST",
                f"/{method}",
                json.dumps(args, default=_to_json),
                {"Content-Type": "application/json"},
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


def _result_decoder(method: Callable[..., Any]) -> Callable[[Any], Any]:
    """Undo what JSON lost of a result: a ``list[SomeDataclass]`` comes back as dictionaries."""
    returns = typing.get_type_hints(method).get("return")
    if typing.get_origin(returns) is list:
        [item] = typing.get_args(returns)
        if dataclasses.is_dataclass(item):
            return lambda rows: [item(**row) for row in rows]
    return lambda result: result


def _remote(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    """``FaultApi.<name>`` for FaultInjector: the same signature and docstring, run remotely."""
    signature = inspect.signature(method)
    decode = _result_decoder(method)

    @functools.wraps(method)
    def remote(self: FaultInjector, *args: Any, **kwargs: Any) -> Any:
        # Bound here, so a wrong call fails in the caller as it would on a local cluster; only
        # the arguments given travel, the defaults are the broker's.
        arguments = signature.bind(self, *args, **kwargs).arguments
        del arguments["self"]
        return decode(self._post(name, **arguments))

    remote.__qualname__ = f"{FaultInjector.__qualname__}.{name}"
    remote.__module__ = __name__
    return remote


def _make_every_fault_method_remote() -> None:
    for name, method in FAULT_METHODS.items():
        if name in vars(FaultInjector):
            raise TypeError(f"FaultInjector.{name} would hide FaultApi.{name}: rename one")
        setattr(FaultInjector, name, _remote(name, method))


_make_every_fault_method_remote()
