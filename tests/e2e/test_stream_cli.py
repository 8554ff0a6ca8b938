"""The stream commands driven as a user drives them: separate processes, signals, kills."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from kedro_stream.config.models import default_changelog_topic
from tests.conftest import KEDRO, kedro, run_kedro
from tests.e2e.processes import ENV, assigned, finish, start
from tests.kafka_helpers import committed, read_topic, wait_until
from tests.reconcile import (
    assert_reconciled,
    expected_outputs,
    reconcile_alerts,
    reconcile_dead_letters,
    reconcile_features,
    reconcile_scores,
)
from tests.stream_helpers import (
    GROUP_PROTOCOLS,
    configure,
    create_input,
    fast_group,
    payments,
    topics,
    use_group_protocol,
)

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def produce_payments(project: Path, topic: str, bootstrap: str, *options: str) -> None:
    """``kedro stream produce`` of the example's payments, as a user would run it: keyed by
    account, as the stream's state requires."""
    events = str(project / "data/01_raw/payments.jsonl")
    kedro(
        project,
        "stream",
        "produce",
        "--topic",
        topic,
        "--bootstrap-servers",
        bootstrap,
        "--file",
        events,
        *("--key", "account_id"),
        *options,
    )


def test_broker_produce_consume_as_a_user(stream_project: Path) -> None:
    names = topics("cli")
    configure(stream_project, names)
    broker = start(stream_project, "broker")
    try:
        first_line = broker.stdout.readline().strip()
        assert first_line.startswith("bootstrap.servers=127.0.0.1:")
        bootstrap = first_line.removeprefix("bootstrap.servers=")
        events = stream_project / "data/01_raw/payments.jsonl"
        poison = stream_project / "poison.jsonl"
        # Keyed as the state wants (produce refuses a record without its key field).
        poison.write_text('not json\n{"payment_id": "p-1", "account_id": "a-1"}\n[]\n')
        produce = ("produce", "--topic", names["input"], "--bootstrap-servers", bootstrap)
        keyed = ("--key", "account_id")
        out = kedro(
            stream_project, "stream", *produce, "--file", str(events), *keyed, "--count", "1500"
        )
        assert "delivered 1500 of 1500 records" in out.stdout
        kedro(stream_project, "stream", *produce, "--file", str(poison))

        done = kedro(
            stream_project,
            "stream",
            "consume",
            "--topic",
            names["input"],
            "--bootstrap-servers",
            bootstrap,
            "--max-messages",
            "1503",
        )
        assert "committed 1503 records" in done.stdout
        assert "3 dead-lettered" in done.stdout
        # Exactly the records sent came out, each once, in every output topic.
        expected = expected_outputs(stream_project, payments(stream_project, 1500))
        assert_reconciled(
            reconcile_features(expected, read_topic(bootstrap, names["features"], expect=1500)),
            reconcile_scores(expected, read_topic(bootstrap, names["scores"], expect=1500)),
            reconcile_alerts(expected, read_topic(bootstrap, names["alerts"])),
            reconcile_dead_letters(
                poison.read_bytes().splitlines(),
                read_topic(bootstrap, names["dlq"], expect=3),
                stage="decode",
                error_class="DecodeError",
            ),
            exact=True,
        )
    finally:
        broker.send_signal(signal.SIGTERM)
        assert broker.wait(timeout=10) == 0


def test_consume_fails_with_a_one_line_reason(stream_project: Path, kafka_broker) -> None:
    bootstrap = ("--bootstrap-servers", kafka_broker.bootstrap_servers)
    error = error_line_of(stream_project, "consume", "--topic", "nope", *bootstrap)
    assert error.startswith("Error: No stream in stream.yml reads topic 'nope'")


def test_sigterm_finishes_the_batch_commits_and_exits_0(stream_project: Path, kafka_broker) -> None:
    names = topics("sigterm")
    bootstrap = kafka_broker.bootstrap_servers
    configure(stream_project, names, **{"batch.max_size": 200})
    fast_group(stream_project)
    # Records arrive while the service runs (20 000 at 2 000/s), so the signal lands mid-stream
    # whatever the machine's speed: the producer is still sending when it is sent.
    events = str(stream_project / "data/01_raw/payments.jsonl")
    producer = start(
        stream_project,
        *("produce", "--topic", names["input"], "--bootstrap-servers", bootstrap),
        *("--file", events, "--key", "account_id", "--rate", "2000"),
    )
    service = start(
        stream_project, "consume", "--topic", names["input"], "--bootstrap-servers", bootstrap
    )
    wait_until(
        lambda: committed(bootstrap, names["group"], names["input"]) != {}, 60, "a first commit"
    )
    assert producer.poll() is None, "the producer finished before the signal: not mid-stream"
    service.send_signal(signal.SIGTERM)
    code, out, err = finish(service)
    assert code == 0, err
    offsets = sum(committed(bootstrap, names["group"], names["input"]).values())
    assert f"committed {offsets} records" in out
    assert 0 < offsets < 20_000, "stopped mid-stream"
    assert finish(producer, timeout_s=60)[0] == 0
    scores = read_topic(bootstrap, names["scores"], expect=offsets)
    # Outputs exist for exactly the committed records: none missing, none beyond them.
    assert len({json.loads(m.value())["payment_id"] for m in scores}) == offsets


@pytest.mark.parametrize("group_protocol", GROUP_PROTOCOLS)
def test_two_instances_share_partitions_and_survive_a_kill(
    stream_project: Path, kafka_broker, group_protocol: str
) -> None:
    names = topics("group")
    bootstrap = kafka_broker.bootstrap_servers
    create_input(kafka_broker, names, partitions=4)
    configure(stream_project, names, **{"batch.max_size": 100})
    fast_group(stream_project)
    use_group_protocol(stream_project, group_protocol)
    produce_payments(stream_project, names["input"], bootstrap, "--count", "8000")
    consume = (
        "consume",
        "--topic",
        names["input"],
        "--bootstrap-servers",
        bootstrap,
    )
    logs = [stream_project / "first.log", stream_project / "second.log"]
    # The second scales out a running first: under the next-generation protocol the development
    # broker hands a new member partitions that their owner has not revoked yet, which it cannot
    # while its assignment callback is still restoring their state.
    first = start(stream_project, *consume, log=logs[0])
    wait_until(lambda: "Restored state" in logs[0].read_text(), 60, "the first instance's state")
    second = start(stream_project, *consume, log=logs[1])
    wait_until(lambda: all(assigned(log) for log in logs), 60, "both instances owning partitions")
    assert not assigned(logs[0]) & assigned(logs[1]), "a partition has a single owner"
    first.kill()  # SIGKILL mid-stream: no clean-up, no commit of its in-flight batch
    first.wait(timeout=10)
    # The survivor takes the dead member's partitions once its session expires.
    wait_until(
        lambda: sum(committed(bootstrap, names["group"], names["input"]).values()) == 8000,
        90,
        "all 8000 records committed by the survivor",
        every_s=0.5,
    )
    second.send_signal(signal.SIGTERM)
    code, _, err = finish(second, timeout_s=60)
    assert code == 0, err
    scores = read_topic(bootstrap, names["scores"])
    sent = payments(stream_project, 8000)
    assert {json.loads(m.value())["payment_id"] for m in scores} == {p["payment_id"] for p in sent}
    # The survivor restored the dead member's state from the changelog: every feature row,
    # repeats of uncommitted batches included, equals the batch computation.
    assert_reconciled(
        reconcile_features(
            expected_outputs(stream_project, sent), read_topic(bootstrap, names["features"])
        )
    )


@pytest.mark.unsupported_broker(
    "embedded", "the librdkafka mock neither fences a transactional id nor hides aborted records"
)
@pytest.mark.unsupported_broker(
    "tansu", "a second init_transactions does not fence the first producer (it times out)"
)
def test_a_restarted_instance_fences_the_old_one(stream_project: Path, kafka_broker) -> None:
    names = topics("fence")
    bootstrap = kafka_broker.bootstrap_servers
    create_input(kafka_broker, names, partitions=2)
    configure(
        stream_project,
        names,
        guarantee="exactly-once",
        transactional_id=f"{names['group']}-0",
        **{"batch.max_size": 50},
    )
    fast_group(stream_project)
    produce_payments(stream_project, names["input"], bootstrap, "--count", "3000", "--rate", "1000")
    consume = ("consume", "--topic", names["input"], "--bootstrap-servers", bootstrap)
    old = start(stream_project, *consume)
    wait_until(lambda: committed(bootstrap, names["group"], names["input"]) != {}, 60, "a commit")
    new = start(stream_project, *consume)  # same transactional.id: fences the old instance
    code, _, err = finish(old, timeout_s=90)
    assert code != 0 and "Fatal Kafka error, nothing committed" in err
    wait_until(
        lambda: sum(committed(bootstrap, names["group"], names["input"]).values()) == 3000,
        120,
        "all records committed by the new instance",
        every_s=0.5,
    )
    new.send_signal(signal.SIGTERM)
    assert finish(new)[0] == 0
    scores = read_topic(bootstrap, names["scores"], isolation="read_committed")
    ids = [json.loads(m.value())["payment_id"] for m in scores]
    assert len(ids) == len(set(ids)) == 3000  # exactly one committed output per input


def test_a_stateful_consume_that_never_reaches_kafka_fails_with_one_line(
    stream_project: Path,
) -> None:
    """The example's stream reads its changelogs' metadata at start: with no broker that
    fails, in one line after the client's one warning, not in librdkafka's raw lines, and
    within about its idle timeout rather than the 20 s a start waits otherwise."""
    address = closed_port_address()
    consume = [KEDRO, "stream", "consume", "--topic", "payments", "--bootstrap-servers", address]
    done = subprocess.run(
        [*consume, "--idle-timeout-s", "3"],
        cwd=stream_project,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    reason = re.match(rf"Error: Never reached Kafka at {address} within (\d+) s ", lines[-1])
    assert reason, lines[-1]
    # 3 s to tell the broker's kind, then one more metadata request of at least 2 s.
    assert int(reason[1]) < 10, lines[-1]
    assert "%3|" not in done.stderr
    warnings = [line for line in lines if "Cannot reach Kafka" in line]
    assert len(warnings) == 1 and "(connection refused); retrying" in warnings[0], lines


def closed_port_address() -> str:
    """An address nothing listens on: a command that tried to reach Kafka there would say so."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"  # closed once the probe is


def error_line_of(project: Path, *args: str) -> str:
    """The last line of a ``kedro stream`` command that must fail with one ``Error:`` line."""
    done = subprocess.run(
        [KEDRO, "stream", *args],
        cwd=project,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: "), done.stderr
    return last


def test_a_typo_in_the_state_key_is_refused_by_compile_consume_and_produce(
    stream_project: Path,
) -> None:
    """state.activity.key: account instead of account_id. Before, compile said ok, produce sent
    every record with no key and consume dead-lettered them all, exiting 0."""
    typo = stream_project / "conf" / "typo"
    typo.mkdir()
    stream_yml = (stream_project / "conf" / "base" / "stream.yml").read_text()
    assert "        key: account_id\n" in stream_yml
    (typo / "stream.yml").write_text(stream_yml.replace("key: account_id\n", "key: account\n"))
    address = closed_port_address()

    compiled = run_kedro(stream_project, "stream", "compile", "-e", "typo")
    assert compiled.returncode == 1, compiled.stdout + compiled.stderr
    verdict = " ".join(compiled.stdout.split())
    assert (
        "problem: stream 'payment-scoring' keeps state 'activity' by key 'account', which is not "
        "a field of the input schema schemas/payment.avsc nor of state dataset "
        "'account_activity' (did you mean 'account_id'?). Fields: the input schema "
        "schemas/payment.avsc: ['payment_id', 'account_id'," in verdict
    )
    assert "state dataset 'account_activity': ['account_id', 'times', 'amounts'," in verdict

    consume = ("consume", "-t", "payments", "-e", "typo", "--bootstrap-servers", address)
    assert error_line_of(stream_project, *consume).startswith(
        "Error: the stream reading 'payments' keeps state 'activity' by key 'account', which is "
        "not a field of the input schema schemas/payment.avsc nor of state dataset "
        "'account_activity' (did you mean 'account_id'?)."
    )

    events = str(stream_project / "data/01_raw/payments.jsonl")
    produce = ("produce", "-t", "payments", "-f", events, "-e", "typo")
    assert error_line_of(stream_project, *produce, "--bootstrap-servers", address) == (
        "Error: line 1 of payments.jsonl has no value for field 'account', which keys the "
        "messages (--key chooses another field); nothing was sent"
    )


def test_a_state_dataset_missing_from_the_catalog_is_a_compile_problem(
    stream_project: Path,
) -> None:
    """The stream injects the state rows and runs without it; `kedro run` fails."""
    catalog = stream_project / "conf" / "base" / "catalog.yml"
    entries = yaml.safe_load(catalog.read_text())
    del entries["scoring.account_activity"]
    catalog.write_text(yaml.safe_dump(entries))

    compiled = run_kedro(stream_project, "stream", "compile")

    assert compiled.returncode == 1, compiled.stdout + compiled.stderr
    assert (
        "problem: stream.yml keeps state in ['account_activity'], which the catalog has no entry "
        "for: the stream injects the rows, but `kedro run` of namespace 'scoring' has nothing to "
        "load them from and fails. Add to conf/base/catalog.yml: scoring.account_activity: "
        "{type: kedro_stream.datasets.StateDataset, columns: [account_id, ...]}"
    ) in " ".join(compiled.stdout.split())
    assert compiled.stderr.strip().splitlines()[-1] == (
        "Error: 1 problem found (listed above); consume would stop on the first"
    )


def test_a_stateful_consume_before_its_input_topic_exists_says_how_to_create_it(
    mini_project: Path, kafka_broker
) -> None:
    """Its changelogs take the input's partition count: the error gives the command that makes
    the input, on the development broker (topics only at its start) or on a cluster."""
    run_id = uuid.uuid4().hex[:8]
    source, group = f"tally-in-{run_id}", f"tally-{run_id}"
    stream = {
        "namespace": "tally",
        "pipeline": "tally",
        "group_id": group,
        "input": {"topics": [source], "dataset": "events"},
        "outputs": {"features": {"topic": f"{source}-features", "key": "account"}},
        "state": {
            "activity": {"input": "activity", "updates": "activity_updates", "key": "account"}
        },
    }
    (mini_project / "conf" / "base" / "stream.yml").write_text(
        yaml.safe_dump({"streams": {"tally": stream}})
    )
    bootstrap = kafka_broker.bootstrap_servers

    done = run_kedro(
        mini_project,
        *("stream", "consume", "-t", source, "--bootstrap-servers", bootstrap),
        *("--idle-timeout-s", "10"),
        timeout=120,
    )

    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    [error] = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert error.startswith(f"Error: input topic '{source}' does not exist: ")
    if kafka_broker.kind == "embedded":
        changelog = default_changelog_topic(group, "activity")
        create = f"`kedro-stream broker --topic {source} --topic {changelog} --partitions N`"
    else:
        create = f"`kafka-topics.sh --bootstrap-server {bootstrap} --create --topic {source} "
    assert create in error
