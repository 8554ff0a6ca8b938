"""Per-key state against a broker: the features a stream publishes equal those of one batch over
all events, whatever the micro-batch size, and a store rebuilt from its changelog goes on where
the lost one stopped."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import threading
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from confluent_kafka import Producer

from kedro_stream.config import Project
from kedro_stream.service.app import consume, load_config
from kedro_stream.service.giving_up import StreamStopped
from kedro_stream.state.changelog import AS_OF
from kedro_stream.state.errors import CorruptChangelog, StateError
from kedro_stream.testing.brokers import create_topic
from tests.kafka_helpers import committed, read_topic, wait_until

pytestmark = pytest.mark.integration
PARTITIONS = 8
ACCOUNTS = 24


def events(count: int, start: int = 0) -> list[dict[str, Any]]:
    """Events in event-time order per account, amounts with many decimals."""
    return [
        {
            "id": i,
            "account": f"acct-{(i * 7) % ACCOUNTS}",
            "amount": round(1.0 + (i % 13) * 0.37 + i / 7, 6),
            "event_time": 1_700_000_000 + i * 11,
        }
        for i in range(start, start + count)
    ]


def produce_keyed(bootstrap: str, topic: str, rows: list[dict[str, Any]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for row in rows:
        producer.produce(topic, json.dumps(row).encode(), row["account"].encode())
    assert producer.flush(30) == 0


def batch_features(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """What `kedro run` computes: the whole history as one batch, from an empty state."""
    from mini_project.nodes import tally

    empty = pd.DataFrame(columns=["account", "count", "total", "last"])
    features, _ = tally(pd.DataFrame(rows), empty)
    return {row["id"]: row for row in features.to_dict(orient="records")}


def write_stream(project: Path, topic: str, group: str, features: str, **extra: Any) -> None:
    stream = {
        "namespace": "tally",
        "pipeline": extra.pop("pipeline", "tally"),
        "group_id": group,
        "input": {"topics": [topic], "dataset": "events"},
        "outputs": {"features": {"topic": features, "key": "account"}},
        "state": {
            "activity": {"input": "activity", "updates": "activity_updates", "key": "account"}
        },
        "batch": {"max_wait_ms": 50},
        **extra,
    }
    consumer = {"fetch.wait.max.ms": 20, "session.timeout.ms": 6000}
    config = {"kafka": {"consumer": consumer}, "streams": {"tally": stream}}
    (project / "conf" / "base" / "stream.yml").write_text(yaml.safe_dump(config))


def run(project: Path, topic: str, bootstrap: str, **limits: Any) -> Any:
    kafka, stream, _ = load_config(
        Project(project),
        env=None,
        topic=topic,
        namespace=None,
        overrides={},
        bootstrap_servers=bootstrap,
    )
    return consume(Project(project), kafka, stream, env=None, **limits)


def published(
    bootstrap: str, topic: str, expect: int, isolation: str = "read_uncommitted"
) -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    for message in read_topic(bootstrap, topic, expect=expect, timeout_s=60, isolation=isolation):
        row = json.loads(message.value())
        found[row["id"]] = row  # a repeat (at-least-once) must carry the same features
    return found


def assert_same_features(
    stream: dict[int, dict[str, Any]], batch: dict[int, dict[str, Any]]
) -> None:
    assert stream.keys() == batch.keys()
    for event_id, expected in batch.items():
        got = stream[event_id]
        assert got["count"] == expected["count"], event_id
        assert got["total"] == pytest.approx(expected["total"], abs=1e-9), event_id
        expected_gap = None if pd.isna(expected["gap"]) else expected["gap"]
        assert got["gap"] == expected_gap, event_id


def new_stream(kafka_broker: Any, project: Path, label: str, topic: str) -> tuple[str, str]:
    """A group of its own, with its changelog laid out like the input, and its features topic."""
    group = f"tally-{label}-{uuid.uuid4().hex[:6]}"
    create_topic(kafka_broker, f"{group}-activity-changelog", PARTITIONS)
    return group, f"features-{group}"


def fresh_stream(
    kafka_broker: Any, project: Path, label: str, **extra: Any
) -> tuple[str, str, str, str]:
    """(bootstrap, input topic, group, features topic) of a new stream on a new input topic."""
    topic = f"events-{uuid.uuid4().hex[:6]}"
    create_topic(kafka_broker, topic, PARTITIONS)
    group, features = new_stream(kafka_broker, project, label, topic)
    write_stream(project, topic, group, features, **extra)
    return kafka_broker.bootstrap_servers, topic, group, features


@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_stream_features_equal_the_batch_computation(
    kafka_broker: Any, mini_project: Path, batch_size: int
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    topic = f"events-{uuid.uuid4().hex[:6]}"
    create_topic(kafka_broker, topic, PARTITIONS)
    rows = events(1500)  # more than one batch of the largest size
    produce_keyed(bootstrap, topic, rows)
    group, features = new_stream(kafka_broker, mini_project, f"b{batch_size}", topic)
    write_stream(
        mini_project, topic, group, features, batch={"max_size": batch_size, "max_wait_ms": 50}
    )

    progress = run(mini_project, topic, bootstrap, max_messages=len(rows), idle_timeout_s=30)

    assert progress.records == len(rows)
    assert_same_features(published(bootstrap, features, len(rows)), batch_features(rows))


def test_a_lost_store_is_rebuilt_from_its_changelog(kafka_broker: Any, mini_project: Path) -> None:
    """Half the events, then the local stores are deleted (a new machine), then the rest: the
    second half's features still count the first half's events."""
    bootstrap, topic, _group, features = fresh_stream(kafka_broker, mini_project, "restore")
    rows = events(600)

    produce_keyed(bootstrap, topic, rows[:300])
    run(mini_project, topic, bootstrap, max_messages=300, idle_timeout_s=30)
    shutil.rmtree(mini_project / "data" / "state")
    produce_keyed(bootstrap, topic, rows[300:500])
    run(mini_project, topic, bootstrap, max_messages=200, idle_timeout_s=30)
    produce_keyed(bootstrap, topic, rows[500:])  # the stores survived this time: caught up
    run(mini_project, topic, bootstrap, max_messages=100, idle_timeout_s=30)

    assert_same_features(published(bootstrap, features, len(rows)), batch_features(rows))


def test_a_store_from_another_life_of_the_changelog_is_rebuilt(
    kafka_broker: Any, mini_project: Path
) -> None:
    """Regression: a development broker started again (a second `make demo`) left the local
    stores of the first run in place, with checkpoints from a changelog that no longer existed,
    and their rows were added to the new run's. Here: one stream's stores are put where a new
    stream, with nothing committed, looks for its own."""
    state = mini_project / "data" / "state"
    rows = events(300)
    bootstrap, old_topic, old_group, _ = fresh_stream(kafka_broker, mini_project, "old")
    produce_keyed(bootstrap, old_topic, rows)
    run(mini_project, old_topic, bootstrap, max_messages=len(rows), idle_timeout_s=30)
    _, topic, group, features = fresh_stream(kafka_broker, mini_project, "new")
    for partition in range(PARTITIONS):
        shutil.copytree(
            state / old_group / "activity" / f"{old_topic}-{partition}",
            state / group / "activity" / f"{topic}-{partition}",
        )
    produce_keyed(bootstrap, topic, rows)

    run(mini_project, topic, bootstrap, max_messages=len(rows), idle_timeout_s=30)

    assert_same_features(published(bootstrap, features, len(rows)), batch_features(rows))


def test_a_record_keyed_by_another_key_is_dead_lettered(
    kafka_broker: Any, mini_project: Path
) -> None:
    bootstrap, topic, _group, _features = fresh_stream(
        kafka_broker, mini_project, "keys", on_failure="stop"
    )
    good, wrong = events(2)
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, json.dumps(good).encode(), good["account"].encode())
    producer.produce(topic, json.dumps(wrong).encode(), b"acct-somebody-else")
    assert producer.flush(10) == 0

    progress = run(mini_project, topic, bootstrap, max_messages=2, idle_timeout_s=30)

    assert (progress.records, progress.produced, progress.dead_lettered) == (2, 1, 1)
    [dead] = read_topic(bootstrap, f"{topic}.dlq", expect=1)
    headers = {k: v.decode() for k, v in dead.headers() or []}
    assert headers["kedro-stream.error.class"] == "KeyMismatch"
    assert (
        "state key 'account' is 'acct-7' but the message key is 'acct-somebody-else'"
        in (headers["kedro-stream.error.message"])
    )


def test_updates_for_a_key_outside_the_batch_stop_the_stream(
    kafka_broker: Any, mini_project: Path
) -> None:
    """A node that writes another key's row: the batch fails at once, naming the dataset and the
    key, and nothing is committed (the batch is there again after a fix)."""
    bootstrap, topic, group, _features = fresh_stream(
        kafka_broker, mini_project, "bad", pipeline="tally_bad", on_failure="stop"
    )
    produce_keyed(bootstrap, topic, events(3))

    with pytest.raises(StreamStopped) as stopped:
        run(mini_project, topic, bootstrap, max_messages=3, idle_timeout_s=30)

    message = str(stopped.value)
    assert "failed at stage state" in message
    assert (
        "'activity_updates': a row for key 'somebody-else', which no record of the batch has"
        in (message)
    )
    assert committed(bootstrap, group, topic) == {}


def test_a_corrupt_changelog_record_stops_the_restore(
    kafka_broker: Any, mini_project: Path
) -> None:
    """Never skipped silently: the service stops, naming the record, before any batch runs."""
    bootstrap, topic, group, _features = fresh_stream(kafka_broker, mini_project, "corrupt")
    rows = events(40)
    produce_keyed(bootstrap, topic, rows)
    run(mini_project, topic, bootstrap, max_messages=len(rows), idle_timeout_s=30)
    changelog = f"{group}-activity-changelog"
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(changelog, b"{not a row", b"acct-7", partition=3, headers=[(AS_OF, b"1")])
    assert producer.flush(10) == 0
    shutil.rmtree(mini_project / "data" / "state")  # a new machine: restores from the start

    with pytest.raises(CorruptChangelog, match=rf"changelog {changelog}\[3\] offset \d+, key"):
        run(mini_project, topic, bootstrap, idle_timeout_s=10)


def test_a_state_dir_that_cannot_be_written_fails_at_boot(
    kafka_broker: Any, mini_project: Path
) -> None:
    (mini_project / "taken").write_text("a file where the state directory should be")
    topic = f"events-{uuid.uuid4().hex[:6]}"
    group, features = new_stream(kafka_broker, mini_project, "dir", topic)
    write_stream(mini_project, topic, group, features, state_dir="taken/state")

    with pytest.raises(StateError, match=r"state_dir .*taken/state/.* cannot be written"):
        run(mini_project, topic, kafka_broker.bootstrap_servers, idle_timeout_s=5)


@pytest.mark.unsupported_broker(
    "embedded", "the librdkafka mock stores no offsets sent with send_offsets_to_transaction"
)
def test_exactly_once_state_goes_on_after_a_lost_store(
    kafka_broker: Any, mini_project: Path
) -> None:
    """Under exactly-once the changelog records are in the batch's transaction."""
    bootstrap, topic, _group, features = fresh_stream(
        kafka_broker, mini_project, "eos", guarantee="exactly-once"
    )
    rows = events(300)
    produce_keyed(bootstrap, topic, rows[:150])
    run(mini_project, topic, bootstrap, max_messages=150, idle_timeout_s=30)
    shutil.rmtree(mini_project / "data" / "state")
    produce_keyed(bootstrap, topic, rows[150:])
    run(mini_project, topic, bootstrap, max_messages=150, idle_timeout_s=30)

    found = published(bootstrap, features, len(rows), isolation="read_committed")
    assert_same_features(found, batch_features(rows))


def http_get(url: str, token: str | None = None) -> tuple[int, bytes]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_a_key_s_row_is_queried_over_http(
    kafka_broker: Any, mini_project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """/state/activity/<account> answers the account's committed row, to holders of the token;
    the token reaches neither the logs nor /metrics."""
    token = "t0k3n-" + uuid.uuid4().hex
    bootstrap, topic, _group, _features = fresh_stream(kafka_broker, mini_project, "query")
    stream_yml = mini_project / "conf" / "base" / "stream.yml"
    config = yaml.safe_load(stream_yml.read_text())
    queries = {"enabled": True, "credentials": "state_queries"}
    config["metrics"] = {"port": 0, "host": "127.0.0.1", "state_queries": queries}
    stream_yml.write_text(yaml.safe_dump(config))
    credentials = {"state_queries": {"token": token}}
    (mini_project / "conf" / "local" / "credentials.yml").write_text(yaml.safe_dump(credentials))
    rows = events(ACCOUNTS + 1)  # acct-0 has two events: 0 and ACCOUNTS
    produce_keyed(bootstrap, topic, rows)
    seen: dict[str, tuple[int, bytes]] = {}
    asking: list[threading.Thread] = []

    def query(port: int) -> None:
        """Runs beside the loop: waits for acct-0's second event to be committed, asks, then
        produces one more event, the last one the stream waits for."""
        base = f"http://127.0.0.1:{port}"
        # Kedro's logging setup at boot dropped caplog's handler and set levels: every line
        # logged while requests are served is captured again, at DEBUG.
        logging.getLogger().addHandler(caplog.handler)
        for name in ("", "kedro", "kedro_stream"):
            caplog.set_level(logging.DEBUG, logger=name)

        def counted_twice() -> bool:
            seen["row"] = http_get(f"{base}/state/activity/acct-0", token)
            return seen["row"][0] == 200 and json.loads(seen["row"][1])["count"] == 2

        def ask() -> None:
            try:
                with contextlib.suppress(AssertionError):  # what was seen is asserted below
                    wait_until(counted_twice, 20, "acct-0's second event")  # < idle timeout
                seen["no token"] = http_get(f"{base}/state/activity/acct-0")
                seen["unknown key"] = http_get(f"{base}/state/activity/acct-none", token)
                seen["metrics"] = http_get(f"{base}/metrics")
            finally:
                produce_keyed(bootstrap, topic, events(1, start=len(rows)))

        asking.append(threading.Thread(target=ask, name="query", daemon=True))
        asking[0].start()

    kafka, stream, metrics = load_config(
        Project(mini_project),
        env=None,
        topic=topic,
        namespace=None,
        overrides={},
        bootstrap_servers=bootstrap,
    )
    try:
        progress = consume(
            Project(mini_project),
            kafka,
            stream,
            env=None,
            max_messages=len(rows) + 1,
            idle_timeout_s=30,
            metrics=metrics,
            on_ready=query,
        )
    finally:
        logging.getLogger().removeHandler(caplog.handler)
    for thread in asking:
        thread.join(timeout=10)

    assert progress.records == len(rows) + 1
    status, body = seen["row"]
    assert status == 200, body
    row = json.loads(body)
    assert (row["account"], row["count"], row["last"]) == ("acct-0", 2, rows[-1]["event_time"])
    assert row["total"] == pytest.approx(rows[0]["amount"] + rows[-1]["amount"])
    assert seen["no token"][0] == 401
    assert seen["unknown key"][0] == 404
    assert seen["metrics"][0] == 200 and b"kedro_stream_state_keys" in seen["metrics"][1]
    for series in (b"state_restore_duration_seconds_count", b"state_restored_records_total"):
        assert b"kedro_stream_" + series in seen["metrics"][1]
    assert "Restored state activity" in caplog.text  # the logs were captured ...
    assert token not in caplog.text  # ... and hold no token
    assert token.encode() not in seen["metrics"][1]
