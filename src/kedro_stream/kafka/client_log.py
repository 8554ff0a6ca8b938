"""librdkafka's log lines, in kedro-stream's words, each said once and then at most every
``REPEAT_S`` with a count.

Every client the service builds passes :data:`CLIENT_LOG` as its ``logger`` (see
:mod:`kedro_stream.kafka.clients`): without it, librdkafka writes its raw lines to stderr from
its own threads, ~25 a second for one unreachable broker. With it, the lines arrive here from
``poll``/``consume``/``flush`` of their client, on the polling thread.

A failed connection (facility ``FAIL``, at warning level or worse) opens an outage of its
broker: "cannot reach Kafka at host:port (reason); retrying", then a count every ``REPEAT_S``.
The address is the broker's own as librdkafka names it (the bootstrap address, or the address
the cluster advertises for broker N): the one to check. librdkafka logs nothing when a
connection succeeds, so the service reports contact (:meth:`ClientLog.reached`: records
received, partitions assigned), which closes the outages it has seen, said once.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

#: A line already said is said again at most this often, with how many times it recurred.
REPEAT_S = 30.0
# Distinct lines remembered for deduplication; past it, the memory starts over.
_MAX_REMEMBERED = 1000
# A broker's line starts with its address: "127.0.0.1:9092/bootstrap: ", "kafka-1:9092/1: ",
# "GroupCoordinator: kafka-1:9092: ". One outage per address, whatever librdkafka calls it.
_BROKER = re.compile(
    r"^(?:GroupCoordinator: )?(?:[a-z_]+://)?(?P<address>[^\s/]+?:\d+)(?:/[\w-]+)?: "
)
# What precedes the cause in a refused connection's line.
_CONNECT = re.compile(r"^Connect to \S+ failed: ")
# librdkafka's thread prefix and its timing suffix differ between repeats of one line.
_THREAD = re.compile(r"^\[thrd:[^\]]*\]: ")
_AFTER = re.compile(r" \(after \d+ms[^)]*\)$")
# "rdkafka#consumer-1": librdkafka's name of a client, around its kind.
_CLIENT = re.compile(r"^rdkafka#|-\d+$")

logger = logging.getLogger("kedro_stream.kafka")


@dataclass
class _Said:
    """One line (or one broker's outage): when it was last said, and how often since."""

    at: float
    repeats: int = 0


@dataclass
class _Outage:
    broker: str
    reason: str
    since: float
    failures: int = 1


class ClientLog:
    """The ``logger`` of every Kafka client: an object with ``log(level, msg, *args)``, as
    confluent-kafka calls it (``msg`` is ``"%s [%s] %s"``: facility, client name, text)."""

    def __init__(
        self, out: logging.Logger = logger, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._out = out
        self._clock = clock
        self._lock = threading.Lock()
        self._said: dict[tuple[object, ...], _Said] = {}
        self._outages: dict[str, _Outage] = {}
        self._last_failure: str | None = None

    def log(self, level: int, msg: str, *args: object) -> None:
        """confluent-kafka's logger interface: one librdkafka line, said once or counted."""
        if len(args) != 3:  # not librdkafka's shape: pass it on as it is
            self._out.log(level, msg, *args)
            return
        facility, client, text = (str(arg) for arg in args)
        text = _AFTER.sub("", _THREAD.sub("", text))
        with self._lock:
            broker = _BROKER.match(text)
            if facility == "FAIL" and level >= logging.WARNING and broker is not None:
                self._failed(broker["address"], text[broker.end() :])
                if text[broker.end() :].startswith("Disconnected"):
                    # An established connection lost: said for its client too, as librdkafka
                    # says it at INFO when the broker closes the connection cleanly.
                    self._other(logging.INFO, facility, _role(client), text)
            else:
                self._other(level, facility, _role(client), text)

    def reached(self) -> None:
        """The service heard from the cluster: outages seen so far are over."""
        with self._lock:
            if not self._outages:
                return
            now = self._clock()
            outages = sorted(self._outages.values(), key=lambda o: o.since)
            self._out.info(
                "Reached Kafka again after %.0f s (failed connection attempts: %s)",
                now - outages[0].since,
                ", ".join(f"{o.failures} to {o.broker}" for o in outages),
            )
            self._outages.clear()
            self._last_failure = None

    @property
    def last_failure(self) -> str | None:
        """ "address: reason" of the last failed connection since Kafka was last reached."""
        with self._lock:
            return self._last_failure

    def _failed(self, broker: str, text: str) -> None:
        reason = _reason(text)
        self._last_failure = f"{broker}: {reason}"
        outage = self._outages.get(broker)
        if outage is None:
            outage = self._outages[broker] = _Outage(broker, reason, self._clock())
        else:
            outage.failures += 1
            outage.reason = reason
        said, elapsed = self._due(("outage", broker))
        if said is None:
            return
        if said.repeats:
            self._out.warning(
                "Still cannot reach Kafka at %s (%s): %d more failed attempts in %.0f s; retrying",
                broker,
                reason,
                said.repeats + 1,
                elapsed,
            )
        else:
            self._out.warning("Cannot reach Kafka at %s (%s); retrying", broker, reason)
        said.repeats = 0

    def _other(self, level: int, facility: str, role: str, text: str) -> None:
        said, elapsed = self._due((level, facility, role, text))
        if said is None:
            return
        if said.repeats:
            self._out.log(
                level, "Kafka %s: %s (%d times in %.0f s)", role, text, said.repeats + 1, elapsed
            )
        else:
            self._out.log(level, "Kafka %s: %s", role, text)
        said.repeats = 0

    def _due(self, key: tuple[object, ...]) -> tuple[_Said | None, float]:
        """The line's record and the time since it was last said, if it is to be said now
        (the first time, or ``REPEAT_S`` since), else ``None`` with the repeat counted."""
        now = self._clock()
        said = self._said.get(key)
        if said is None:
            if len(self._said) >= _MAX_REMEMBERED:
                self._said.clear()
            said = self._said[key] = _Said(now)
            return said, 0.0
        elapsed = now - said.at
        if elapsed < REPEAT_S:
            said.repeats += 1
            return None, elapsed
        said.at = now
        return said, elapsed


def _role(client: str) -> str:
    """ "rdkafka#producer-2" → "producer" (admin clients are producers to librdkafka)."""
    return _CLIENT.sub("", client) or "client"


def _reason(text: str) -> str:
    """The cause in a failure line: "Connect to ipv4#h:p failed: Connection refused" →
    "connection refused"; "SASL authentication error: ..." stays as it is."""
    cause = _CONNECT.sub("", text).strip()
    return cause[:1].lower() + cause[1:] if cause[1:2].islower() else cause


#: The one instance the service's clients share, so an outage seen by several is said once.
CLIENT_LOG = ClientLog()
