"""Every command beside ``consume`` builds its clients from stream.yml's ``kafka`` section:
credentials and client properties reach each client, and no secret reaches the output."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from click.testing import CliRunner
from confluent_kafka import KafkaError, KafkaException
from kedro.framework.startup import bootstrap_project

from kedro_stream.cli import commands
from kedro_stream.config import DEFAULT_BOOTSTRAP_SERVERS, Project, command_stream_file
from kedro_stream.kafka import command_clients

SECRET = "s3cret-commands-5e1d"
CLIENT = {"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN"}


def write_config(project: Path) -> None:
    stream = {
        "namespace": "tally",
        "pipeline": "tally",
        "group_id": "tally",
        "input": {"topics": ["events"], "dataset": "events"},
        "state": {
            "activity": {"input": "activity", "updates": "activity_updates", "key": "account"}
        },
    }
    kafka = {"bootstrap_servers": "kafka.example:9093", "credentials": "kafka", "client": CLIENT}
    config = {"kafka": kafka, "streams": {"tally": stream}}
    (project / "conf" / "base" / "stream.yml").write_text(yaml.safe_dump(config))
    credentials = {"kafka": {"sasl.username": "svc", "sasl.password": SECRET}}
    (project / "conf" / "local" / "credentials.yml").write_text(yaml.safe_dump(credentials))


class Unreachable:
    """Stands for every confluent-kafka client class: records its configuration, and the
    cluster never answers."""

    built: ClassVar[list[tuple[str, dict[str, Any]]]] = []
    kind = "client"

    def __init__(self, config: dict[str, Any]) -> None:
        self.built.append((self.kind, config))

    def list_topics(self, *_args: Any, **_kwargs: Any) -> None:
        raise KafkaException(KafkaError(KafkaError._TRANSPORT))

    def poll(self, _timeout: float) -> int:
        return 0

    def close(self) -> None:
        pass


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    built: list[tuple[str, dict[str, Any]]] = []
    for name in ("Producer", "Consumer", "AdminClient"):
        fake = type(name, (Unreachable,), {"built": built, "kind": name})
        monkeypatch.setattr(command_clients, name, fake)
    return built


@pytest.mark.parametrize(
    ("args", "kinds"),
    [
        (["produce", "--topic", "events", "--file", "{project}/events.jsonl"], {"Producer"}),
        (["lag", "--group", "tally"], {"Consumer"}),
        (
            ["reset", "--group", "tally", "--topic", "events", "--to-earliest"],
            {"Consumer", "AdminClient"},
        ),
    ],
)
def test_every_command_client_gets_the_kafka_section_and_shows_no_secret(
    mini_project: Path,
    recorded: list[tuple[str, dict[str, Any]]],
    args: list[str],
    kinds: set[str],
) -> None:
    write_config(mini_project)
    (mini_project / "events.jsonl").write_text('{"account": "a", "id": 1}\n')
    metadata = bootstrap_project(mini_project)

    args = [arg.format(project=mini_project) for arg in args]

    result = CliRunner().invoke(
        commands, ["stream", *args], obj=metadata, catch_exceptions=False, env={"COLUMNS": "200"}
    )

    assert result.exit_code == 1, result.output
    assert "Error: cannot reach Kafka at kafka.example:9093 within 10 s" in result.output
    assert SECRET not in result.output
    assert {kind for kind, _ in recorded} == kinds
    for _kind, config in recorded:
        assert config["bootstrap.servers"] == "kafka.example:9093"
        assert config["sasl.password"] == SECRET
        assert config["sasl.username"] == "svc"
        assert config.items() >= CLIENT.items()
        assert config["logger"] is command_clients.LIBRDKAFKA_LOGGER  # stderr stays clean


def test_the_flag_overrides_the_address_and_keeps_the_credentials(mini_project: Path) -> None:
    write_config(mini_project)

    file = command_stream_file(Project(mini_project), None, "10.0.0.1:9092")

    assert file.kafka.client_properties("admin")["bootstrap.servers"] == "10.0.0.1:9092"
    assert file.kafka.client_properties("admin")["sasl.password"] == SECRET
    assert SECRET not in repr(file)


def test_without_stream_yml_the_flag_or_the_default_applies(mini_project: Path) -> None:
    assert command_stream_file(Project(mini_project), None, None).kafka.bootstrap_servers == (
        DEFAULT_BOOTSTRAP_SERVERS
    )
    assert command_stream_file(None, None, "h:1").kafka.client_properties("producer") == {
        "bootstrap.servers": "h:1"
    }


def test_produce_keys_records_by_the_state_key_of_the_stream_reading_the_topic(
    mini_project: Path, recorded: list[tuple[str, dict[str, Any]]]
) -> None:
    write_config(mini_project)
    (mini_project / "events.jsonl").write_text('{"account": "a", "id": 1}\n')
    metadata = bootstrap_project(mini_project)
    args = ["stream", "produce", "--topic", "events", "--file", str(mini_project / "events.jsonl")]

    default = CliRunner().invoke(commands, args, obj=metadata)
    chosen = CliRunner().invoke(commands, [*args, "--key", "id"], obj=metadata)

    assert "message key: field account, the state key of stream tally" in default.output
    assert "stream tally keeps state by account and dead-letters records keyed by anything " in (
        chosen.output
    )
