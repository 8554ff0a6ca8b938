"""The embedded broker's fault API is declared once (``FaultApi``): the control endpoint serves
exactly its methods and ``FaultInjector`` offers exactly them, arguments and results intact.

The endpoint here fronts a recording cluster, not librdkafka: what is checked is the path a call
takes between processes, not what the mock does with it (tests/integration covers that).
"""

from __future__ import annotations

import http.client
import inspect
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from kedro_stream.devbroker.cluster import (
    FAULT_METHODS,
    FaultApi,
    MockCluster,
    MockClusterError,
    MockRequest,
)
from kedro_stream.devbroker.control import ControlServer, EmbeddedBrokerError, FaultInjector

#: A JSON-able argument per annotation a fault method uses. A new method with a new annotation
#: fails here until one is added, which is the moment to check it can cross a process boundary.
SAMPLES: dict[str, Any] = {
    "int": 3,
    "str": "topic-a",
    "Sequence[int]": [7, 0, 7],
    "Sequence[int] | None": [10, 20, 30],
    "CoordinatorKeyType": "transaction",
}
#: What the recording cluster answers, where a method returns something.
RESULTS: dict[str, Any] = {
    "broker_error_stack_count": 2,
    "get_requests": [MockRequest(broker_id=1, api_key=0, timestamp_us=12), MockRequest(2, 8, 13)],
}


class RecordingCluster:
    """Stands in for a MockCluster: records each call, answers from RESULTS or ``refusals``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.refusals: dict[str, Exception] = {}

    def __getattr__(self, name: str) -> Any:
        def record(**args: Any) -> Any:
            self.calls.append((name, args))
            if name in self.refusals:
                raise self.refusals[name]
            return RESULTS.get(name)

        return record


@pytest.fixture
def endpoint() -> Iterator[tuple[ControlServer, RecordingCluster]]:
    cluster = RecordingCluster()
    server = ControlServer(0, cluster)  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server, cluster
    server.shutdown()
    server.server_close()
    thread.join()


def injector(server: ControlServer) -> FaultInjector:
    host, port = server.server_address[:2]
    return FaultInjector(f"{host}:{port}")


def sample_arguments(name: str) -> dict[str, Any]:
    parameters = list(inspect.signature(FAULT_METHODS[name]).parameters.values())[1:]
    return {p.name: SAMPLES[p.annotation] for p in parameters}


def test_fault_api_is_every_public_method_of_fault_api_and_nothing_else() -> None:
    public = {name for name, member in vars(FaultApi).items() if not name.startswith("_")}
    assert set(FAULT_METHODS) == public
    assert {"broker_down", "push_request_errors", "get_requests", "reset"} <= public


def test_fault_injector_offers_exactly_the_fault_api_and_runs_none_of_it_locally() -> None:
    own = {name for name in dir(FaultInjector) if not name.startswith("_")}
    assert own == set(FAULT_METHODS)
    for name, declared in FAULT_METHODS.items():
        offered = vars(FaultInjector)[name]  # FaultInjector's own, not FaultApi's implementation
        assert offered is not declared
        assert offered.__wrapped__ is declared
        assert inspect.signature(offered) == inspect.signature(declared)
        assert offered.__doc__ == declared.__doc__ and declared.__doc__


def test_mock_cluster_runs_the_fault_api_itself() -> None:
    for name, declared in FAULT_METHODS.items():
        assert getattr(MockCluster, name) is declared


@pytest.mark.parametrize("name", list(FAULT_METHODS))
def test_every_fault_method_reaches_the_cluster_with_its_arguments_and_returns_its_result(
    endpoint: tuple[ControlServer, RecordingCluster], name: str
) -> None:
    server, cluster = endpoint
    arguments = sample_arguments(name)
    result = getattr(injector(server), name)(**arguments)
    assert cluster.calls == [(name, arguments)]
    assert result == RESULTS.get(name)


def test_only_the_arguments_given_travel_so_defaults_are_the_brokers(
    endpoint: tuple[ControlServer, RecordingCluster],
) -> None:
    server, cluster = endpoint
    injector(server).push_broker_request_errors(1, 0, (5, 6))  # positional, a tuple
    assert cluster.calls == [
        ("push_broker_request_errors", {"broker_id": 1, "api_key": 0, "errors": [5, 6]})
    ]


def test_a_wrong_call_fails_in_the_caller_and_sends_nothing(
    endpoint: tuple[ControlServer, RecordingCluster],
) -> None:
    server, cluster = endpoint
    faults = injector(server)
    with pytest.raises(TypeError, match="broker_id"):
        faults.broker_down()
    with pytest.raises(TypeError, match="unexpected keyword argument 'partition'"):
        faults.broker_up(1, partition=0)
    assert cluster.calls == []


@pytest.mark.parametrize("name", ["no_such_fault", "close", "_call", "__init__", "calls"])
def test_the_endpoint_refuses_what_is_not_the_fault_api(
    endpoint: tuple[ControlServer, RecordingCluster], name: str
) -> None:
    server, cluster = endpoint
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(str(host), port, timeout=10)
    try:
        connection.request("POST", f"/{name}", "{}")
        response = connection.getresponse()
        assert response.status == 404
        assert json.loads(response.read()) == {"error": f"unknown method {name!r}"}
    finally:
        connection.close()
    assert cluster.calls == []


def test_what_the_cluster_refuses_raises_embedded_broker_error_with_its_reason(
    endpoint: tuple[ControlServer, RecordingCluster],
) -> None:
    server, cluster = endpoint
    cluster.refusals["broker_down"] = MockClusterError("BROKER_NOT_AVAILABLE")
    with pytest.raises(EmbeddedBrokerError, match=r"^broker_down: BROKER_NOT_AVAILABLE$"):
        injector(server).broker_down(9)
