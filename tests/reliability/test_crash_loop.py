"""The crash loop: 100 000 payments, the consumer SIGKILLed mid-stream ten times and restarted.

At-least-once means every good input has at least one output (duplicates are counted and
reported, never lost) and every poison record is in the dead-letter topic.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from kedro_stream.testing.brokers import create_topic
from tests.kafka_helpers import committed, produce, read_topic, wait_until
from tests.stream_helpers import configure, consume_command, fast_group, payments, topics

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
TOTAL, KILLS, POISON_EVERY = 100_000, 10, 97
ENV = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}


def reconciliation(rows: list[tuple[str, int, int, int, int]]) -> str:
    lines = [f"{'records':<8}{'inputs':>9}{'with output':>13}{'missing':>9}{'duplicates':>12}"]
    lines += [f"{n:<8}{a:>9}{b:>13}{c:>9}{d:>12}" for n, a, b, c, d in rows]
    return "\n".join(lines)


def test_sigkill_ten_times_loses_nothing(
    kafka_broker, stream_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = topics("crash")
    bootstrap = kafka_broker.bootstrap_servers
    # 16 partitions keep each one far below the embedded broker's ~5 MiB retention.
    create_topic(kafka_broker, names["input"], partitions=16)
    for output in ("scores", "alerts", "dlq"):
        create_topic(kafka_broker, names[output], partitions=16)
    configure(stream_project, names, **{"batch.max_size": 1000})
    fast_group(stream_project)
    pool = payments(stream_project, 20_000)
    good: set[str] = set()
    poison: set[bytes] = set()
    values = []
    for i in range(TOTAL):
        if i % POISON_EVERY == 0:
            value = f'{{"poison": {i}'.encode()  # truncated JSON, unique per record
            poison.add(value)
        else:
            record = {**pool[i % len(pool)], "payment_id": f"c-{i:06d}"}
            good.add(record["payment_id"])
            value = json.dumps(record).encode()
        values.append(value)
    produce(bootstrap, names["input"], values)

    rng = random.Random(7)
    consume = consume_command(names, bootstrap, "--idle-timeout-s", "6")
    for _ in range(KILLS):
        before = sum(committed(bootstrap, names["group"], names["input"]).values())
        service = subprocess.Popen(
            consume,
            cwd=stream_project,
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(
                lambda before=before: (
                    sum(committed(bootstrap, names["group"], names["input"]).values()) > before
                ),
                90,
                "progress after a restart",
                every_s=0.2,
            )
            time.sleep(rng.uniform(0.0, 0.5))  # a random point in the next batches
        finally:
            service.send_signal(signal.SIGKILL)
            service.wait(timeout=10)
    final = subprocess.run(
        consume,
        cwd=stream_project,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert final.returncode == 0, final.stderr[-2000:]
    assert sum(committed(bootstrap, names["group"], names["input"]).values()) == TOTAL

    outputs = Counter(
        json.loads(m.value())["payment_id"]
        for m in read_topic(bootstrap, names["scores"], timeout_s=120)  # all, duplicates too
    )
    dead = Counter(m.value() for m in read_topic(bootstrap, names["dlq"], timeout_s=60))
    rows = [
        (
            "good",
            len(good),
            len(good & outputs.keys()),
            len(good - outputs.keys()),
            sum(outputs.values()) - len(outputs),
        ),
        (
            "poison",
            len(poison),
            len(poison & dead.keys()),
            len(poison - dead.keys()),
            sum(dead.values()) - len(dead),
        ),
    ]
    table = reconciliation(rows)
    with capsys.disabled():
        sys.stdout.write(f"\ncrash loop, at-least-once, {KILLS} SIGKILLs:\n{table}\n")
    assert good <= outputs.keys(), table
    assert poison <= dead.keys(), table
    assert outputs.keys() <= good, "an output for an input that was never sent"
