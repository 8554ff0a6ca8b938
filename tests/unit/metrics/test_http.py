"""The metrics server's /state endpoint: off unless configured, then only with the bearer token;
/metrics and the probes stay open. An address it cannot listen on is one error naming it."""

from __future__ import annotations

import json
import logging
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message

import pytest
from prometheus_client import CollectorRegistry, Counter
from pydantic import SecretStr

from kedro_stream.errors import KedroStreamError
from kedro_stream.metrics.http import MetricsPortError, MetricsServer, StateQueries

TOKEN = "t0k3n-5ecret-81c2"
ROWS = {
    ("activity", "acct-7"): b'{"account":"acct-7","count":3}',
    ("activity", "a/b c"): b'{"account":"a/b c","count":1}',
}
LOOKED_UP: list[tuple[str, str]] = []


def lookup(name: str, key: str) -> bytes | None:
    LOOKED_UP.append((name, key))
    return ROWS.get((name, key))


def serve(state_queries: StateQueries | None) -> Iterator[str]:
    registry = CollectorRegistry()
    Counter("kedro_stream_requests", "a sample", registry=registry).inc()
    server = MetricsServer(
        registry,
        port=0,
        host="127.0.0.1",
        healthy=lambda: (True, "ok"),
        ready=lambda: (True, "ok"),
        state_queries=state_queries,
    )
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


@pytest.fixture
def on() -> Iterator[str]:
    LOOKED_UP.clear()
    yield from serve(StateQueries(lookup, SecretStr(TOKEN)))


@pytest.fixture
def off() -> Iterator[str]:
    yield from serve(None)


def get(url: str, token: str | None = None) -> tuple[int, Message, bytes]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_off_answers_404_even_with_a_token(off: str) -> None:
    status, _, body = get(f"{off}/state/activity/acct-7", TOKEN)
    assert status == 404
    assert b"off" in body
    assert get(f"{off}/")[2].split() == [b"/metrics", b"/healthz", b"/readyz"]


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", f"Basic {TOKEN}", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer é"],
)
def test_a_missing_or_wrong_token_is_401(on: str, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    request = urllib.request.Request(f"{on}/state/activity/acct-7", headers=headers)
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 401
    assert caught.value.headers["WWW-Authenticate"] == "Bearer"
    assert b"acct-7" not in caught.value.read()
    assert LOOKED_UP == []  # nothing tells an unauthorized caller which keys exist


def test_the_right_token_gets_the_row(on: str) -> None:
    status, headers, body = get(f"{on}/state/activity/acct-7", TOKEN)
    assert (status, headers["Content-Type"]) == (200, "application/json")
    assert json.loads(body) == {"account": "acct-7", "count": 3}
    # the scheme is case-insensitive; a query string is not part of the key
    request = urllib.request.Request(
        f"{on}/state/activity/acct-7?x=1", headers={"Authorization": f"bearer {TOKEN}"}
    )
    assert urllib.request.urlopen(request, timeout=5).read() == ROWS[("activity", "acct-7")]


def test_keys_are_url_decoded(on: str) -> None:
    status, _, body = get(f"{on}/state/activity/a%2Fb%20c", TOKEN)
    assert (status, body) == (200, ROWS[("activity", "a/b c")])
    assert LOOKED_UP == [("activity", "a/b c")]


@pytest.mark.parametrize(
    "path", ["/state/activity/acct-99", "/state/other/acct-7", "/state/activity/", "/state/"]
)
def test_a_row_not_held_here_is_404(on: str, path: str) -> None:
    status, headers, body = get(f"{on}{path}", TOKEN)
    assert (status, headers["Content-Type"]) == (404, "text/plain; charset=utf-8")
    assert body.endswith(b"\n") and len(body) < 100


def test_metrics_and_probes_stay_open(on: str) -> None:
    for path in ("/metrics", "/healthz", "/readyz"):
        assert get(f"{on}{path}")[0] == 200, path
    assert b"kedro_stream_requests_total 1.0" in get(f"{on}/metrics")[2]
    assert b"/state/<name>/<key>" in get(f"{on}/")[2]  # the root lists the endpoint when on


def test_the_token_reaches_neither_logs_nor_metrics(
    on: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="kedro_stream"):
        assert get(f"{on}/state/activity/acct-7", TOKEN)[0] == 200
        assert get(f"{on}/state/activity/acct-7", TOKEN + "x")[0] == 401
        scraped = get(f"{on}/metrics")[2].decode()
    assert TOKEN not in caplog.text
    assert TOKEN not in scraped
    assert TOKEN not in repr(StateQueries(lookup, SecretStr(TOKEN)))


def server_on(host: str, port: int) -> MetricsServer:
    return MetricsServer(
        CollectorRegistry(),
        port=port,
        host=host,
        healthy=lambda: (True, "ok"),
        ready=lambda: (True, "ok"),
    )


def test_a_port_in_use_is_named_with_the_ways_out() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(MetricsPortError) as raised:
            server_on("127.0.0.1", port)

    assert isinstance(raised.value, KedroStreamError)  # the commands' one Error: line
    assert str(raised.value) == (
        f"cannot serve /metrics on 127.0.0.1:{port}: the port is in use; choose another "
        "(--metrics-port, or metrics.port in stream.yml), or --metrics-port 0 for any free port"
    )


def test_an_address_not_of_this_machine_is_named() -> None:
    with pytest.raises(MetricsPortError, match=r"^cannot serve /metrics on 192\.0\.2\.1:0: .*"):
        server_on("192.0.2.1", 0)  # TEST-NET-1: never a local address
