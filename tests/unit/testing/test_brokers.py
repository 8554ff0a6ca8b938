"""Which broker a test run gets, without starting one: the cluster ``KAFKA_BOOTSTRAP_SERVERS``
names first, then Kafka in Docker when an engine answers, else the embedded broker; and how
a topic is made on each. Every broker, Docker engine and admin client here is a fake."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from kedro_stream.testing import BrokerHandle, brokers, create_topic, unique_topic
from kedro_stream.testing.brokers import KAFKA_IMAGE, kafka_broker

#: The real one, before the fixture below replaces it in every test.
DOCKER_ANSWERS = brokers._docker_answers


class Started(AssertionError):
    """A fake broker of the tier that must not be chosen was started."""


@pytest.fixture(autouse=True)
def no_real_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each tier fails the test unless the test itself replaces it."""

    def docker_asked() -> bool:
        raise Started("Docker was asked")

    class NoEmbedded:
        @classmethod
        def start(cls) -> Any:
            raise Started("the embedded broker was started")

    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv(brokers.KIND_VARIABLE, raising=False)
    monkeypatch.setattr(brokers, "_docker_answers", docker_asked)
    monkeypatch.setattr(brokers, "EmbeddedBroker", NoEmbedded)


def test_the_named_cluster_comes_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka.example:9092")

    with kafka_broker() as handle:
        assert handle == BrokerHandle("kafka.example:9092", "external", None)


def test_the_named_cluster_s_kind_comes_from_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
    monkeypatch.setenv("KAFKA_BROKER_KIND", "tansu")

    with kafka_broker() as handle:
        assert (handle.kind, handle.faults) == ("tansu", None)


@pytest.mark.parametrize("kind", ["embedded", "testcontainers", "kafka"])
def test_an_unknown_kind_is_refused(monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
    monkeypatch.setenv("KAFKA_BROKER_KIND", kind)

    with pytest.raises(ValueError, match=r"KAFKA_BROKER_KIND=.*: use 'external' or 'tansu'"):
        with kafka_broker():
            pass


@dataclass
class FakeContainer:
    image: str
    calls: list[str] = field(default_factory=list)

    def with_kraft(self) -> FakeContainer:
        self.calls.append("kraft")
        return self

    def __enter__(self) -> FakeContainer:
        self.calls.append("enter")
        return self

    def __exit__(self, *_exc: object) -> None:
        self.calls.append("exit")

    def get_bootstrap_server(self) -> str:
        return "localhost:32771"


def test_kafka_in_docker_when_an_engine_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    containers: list[FakeContainer] = []

    def container(image: str) -> FakeContainer:
        containers.append(FakeContainer(image))
        return containers[-1]

    module = types.ModuleType("testcontainers.kafka")
    module.KafkaContainer = container  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "testcontainers.kafka", module)
    monkeypatch.setattr(brokers, "_docker_answers", lambda: True)

    with kafka_broker() as handle:
        assert handle == BrokerHandle("localhost:32771", "testcontainers", None)
        assert containers[0].calls == ["kraft", "enter"]
    assert containers[0].image == KAFKA_IMAGE
    assert containers[0].calls == ["kraft", "enter", "exit"]


def test_the_embedded_broker_otherwise_with_its_faults(monkeypatch: pytest.MonkeyPatch) -> None:
    faults = object()
    stopped: list[bool] = []

    class FakeEmbedded:
        @classmethod
        @contextmanager
        def start(cls) -> Iterator[Any]:
            yield SimpleNamespace(bootstrap_servers="127.0.0.1:40001", faults=faults)
            stopped.append(True)

    monkeypatch.setattr(brokers, "_docker_answers", lambda: False)
    monkeypatch.setattr(brokers, "EmbeddedBroker", FakeEmbedded)

    with kafka_broker() as handle:
        assert handle == BrokerHandle("127.0.0.1:40001", "embedded", faults)  # type: ignore[arg-type]
        assert stopped == []
    assert stopped == [True]


class FakeDocker:
    """Stands for the docker SDK: records the timeout, and its engine answers or not."""

    def __init__(self, answers: bool) -> None:
        self.answers = answers
        self.timeouts: list[float] = []

    def from_env(self, *, timeout: float) -> FakeDocker:
        self.timeouts.append(timeout)
        return self

    def ping(self) -> bool:
        if not self.answers:
            raise ConnectionError("no socket")
        return True


@pytest.mark.parametrize("answers", [True, False])
def test_docker_answers_when_its_engine_replies_to_a_ping(
    monkeypatch: pytest.MonkeyPatch, answers: bool
) -> None:
    docker = FakeDocker(answers)
    monkeypatch.setitem(sys.modules, "docker", docker)

    assert DOCKER_ANSWERS() is answers
    assert docker.timeouts == [brokers._DOCKER_PING_TIMEOUT_S]


def test_no_docker_sdk_means_no_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "docker", None)  # import docker raises ImportError

    assert DOCKER_ANSWERS() is False


def test_the_embedded_broker_makes_topics_through_fault_injection() -> None:
    made: list[tuple[str, int, int]] = []
    faults = SimpleNamespace(create_topic=lambda *args: made.append(args))

    create_topic(BrokerHandle("127.0.0.1:1", "embedded", faults), "events", 3)  # type: ignore[arg-type]

    assert made == [("events", 3, 1)]


class FakeAdmin:
    """An admin client whose metadata shows the topic with one more partition each time."""

    def __init__(self, config: dict[str, Any], partitions: list[int]) -> None:
        self.config = config
        self.partitions = partitions
        self.created: list[tuple[str, int, int]] = []

    def create_topics(self, topics: list[Any], operation_timeout: float) -> dict[str, Any]:
        self.created += [(t.topic, t.num_partitions, t.replication_factor) for t in topics]
        return {t.topic: SimpleNamespace(result=lambda timeout: None) for t in topics}

    def list_topics(self, name: str, timeout: float) -> Any:
        shown = self.partitions.pop(0) if len(self.partitions) > 1 else self.partitions[0]
        topic = SimpleNamespace(error=None, partitions=dict.fromkeys(range(shown)))
        return SimpleNamespace(topics={name: topic})


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """A clock that moves only when the code sleeps; returns the sleeps. A wait that never ends
    fails at once instead of at the suite's timeout."""
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds
        assert len(sleeps) < 1000, "the wait never ends"

    monkeypatch.setattr(brokers, "time", SimpleNamespace(monotonic=lambda: now[0], sleep=sleep))
    return sleeps


def admin_showing(monkeypatch: pytest.MonkeyPatch, *partitions: int) -> list[FakeAdmin]:
    admins: list[FakeAdmin] = []

    def admin(config: dict[str, Any]) -> FakeAdmin:
        admins.append(FakeAdmin(config, list(partitions)))
        return admins[-1]

    monkeypatch.setattr(brokers, "AdminClient", admin)
    return admins


def test_other_brokers_make_topics_and_wait_for_every_partition_in_metadata(
    monkeypatch: pytest.MonkeyPatch, clock: list[float]
) -> None:
    admins = admin_showing(monkeypatch, 0, 2, 3)

    create_topic(BrokerHandle("kafka:9092", "external", None), "events", 3, replication_factor=2)

    assert admins[0].config == {"bootstrap.servers": "kafka:9092"}
    assert admins[0].created == [("events", 3, 2)]
    assert len(clock) == 2  # two looks at metadata without every partition


def test_a_topic_that_never_shows_in_metadata_is_a_timeout(
    monkeypatch: pytest.MonkeyPatch, clock: list[float]
) -> None:
    admin_showing(monkeypatch, 1)

    with pytest.raises(TimeoutError, match=r"topic events not in metadata with 3 partitions"):
        create_topic(BrokerHandle("kafka:9092", "external", None), "events", 3, timeout_s=1.0)


def test_unique_topics_are_unique_and_keep_their_prefix() -> None:
    names = {unique_topic("payments") for _ in range(1000)}

    assert len(names) == 1000
    assert all(name.startswith("payments-") for name in names)
    assert unique_topic().startswith("test-")
