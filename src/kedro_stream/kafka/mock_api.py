"""ctypes bindings to librdkafka's mock cluster API (``rdkafka_mock.h``).

Hand-rolled because no Python package exposes the mock cluster's fault injection: confluent-kafka
only lets a client *host* a mock cluster (``test.mock.num.brokers``), with no handle to steer it.
The functions are exported by the librdkafka bundled in the confluent-kafka wheel, so the bindings
load that exact library. The API is marked experimental upstream; every symbol is declared once in
``_SIGNATURES`` (checked against librdkafka 2.16) so a renamed one fails loudly at load time.
"""

from __future__ import annotations

import ctypes
import importlib.util
import threading
from collections.abc import Sequence
from ctypes import POINTER, c_char_p, c_int, c_int16, c_int32, c_int64, c_size_t, c_void_p
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any, Literal

from kedro_stream.errors import KedroStreamError

#: Partition count the mock gives topics it auto-creates (metadata requests, produce); librdkafka
#: has no API to change it, so other counts need :meth:`MockCluster.create_topic`.
AUTO_CREATE_PARTITIONS = 4

CoordinatorKeyType = Literal["group", "transaction"]


class ApiKey(IntEnum):
    """Kafka protocol request types (named as in the protocol spec), as request tracking records
    them and error injection selects them."""

    Produce = 0
    Fetch = 1
    ListOffsets = 2
    Metadata = 3
    OffsetCommit = 8
    OffsetFetch = 9
    FindCoordinator = 10
    JoinGroup = 11
    Heartbeat = 12
    LeaveGroup = 13
    SyncGroup = 14
    ApiVersions = 18
    InitProducerId = 22
    AddPartitionsToTxn = 24
    AddOffsetsToTxn = 25
    EndTxn = 26
    TxnOffsetCommit = 28


@dataclass(frozen=True)
class MockRequest:
    """One request the mock cluster received while request tracking was on."""

    broker_id: int
    api_key: int
    #: Monotonic clock of the broker process, in microseconds: compare, don't read as a date.
    timestamp_us: int


class MockClusterError(KedroStreamError):
    """librdkafka refused a mock cluster operation, or the mock API cannot be loaded."""


_RK_PRODUCER = 0
_ERRSTR_SIZE = 512
_CONF_OK = 0

_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "rd_kafka_conf_new": (c_void_p, []),
    "rd_kafka_conf_set": (c_int, [c_void_p, c_char_p, c_char_p, c_char_p, c_size_t]),
    "rd_kafka_conf_destroy": (None, [c_void_p]),
    "rd_kafka_new": (c_void_p, [c_int, c_void_p, c_char_p, c_size_t]),
    "rd_kafka_destroy": (None, [c_void_p]),
    "rd_kafka_err2name": (c_char_p, [c_int]),
    "rd_kafka_err2str": (c_char_p, [c_int]),
    "rd_kafka_mock_cluster_new": (c_void_p, [c_void_p, c_int]),
    "rd_kafka_mock_cluster_destroy": (None, [c_void_p]),
    "rd_kafka_mock_cluster_bootstraps": (c_char_p, [c_void_p]),
    "rd_kafka_mock_group_initial_rebalance_delay_ms": (None, [c_void_p, c_int32]),
    "rd_kafka_mock_topic_create": (c_int, [c_void_p, c_char_p, c_int, c_int]),
    "rd_kafka_mock_broker_set_down": (c_int, [c_void_p, c_int32]),
    "rd_kafka_mock_broker_set_up": (c_int, [c_void_p, c_int32]),
    "rd_kafka_mock_broker_set_rtt": (c_int, [c_void_p, c_int32, c_int]),
    "rd_kafka_mock_push_request_errors_array": (
        None,
        [c_void_p, c_int16, c_size_t, POINTER(c_int)],
    ),
    # Variadic: only the fixed arguments are declared; the (error, rtt_ms) pairs are passed as
    # explicit c_int values, as ctypes requires for variadic calls on every ABI.
    "rd_kafka_mock_broker_push_request_error_rtts": (c_int, [c_void_p, c_int32, c_int16, c_size_t]),
    "rd_kafka_mock_clear_request_errors": (None, [c_void_p, c_int16]),
    "rd_kafka_mock_broker_error_stack_cnt": (
        c_int,
        [c_void_p, c_int32, c_int16, POINTER(c_size_t)],
    ),
    "rd_kafka_mock_partition_set_leader": (c_int, [c_void_p, c_char_p, c_int32, c_int32]),
    "rd_kafka_mock_coordinator_set": (c_int, [c_void_p, c_char_p, c_char_p, c_int32]),
    "rd_kafka_mock_start_request_tracking": (None, [c_void_p]),
    "rd_kafka_mock_stop_request_tracking": (None, [c_void_p]),
    "rd_kafka_mock_get_requests": (POINTER(c_void_p), [c_void_p, POINTER(c_size_t)]),
    "rd_kafka_mock_request_id": (c_int32, [c_void_p]),
    "rd_kafka_mock_request_api_key": (c_int16, [c_void_p]),
    "rd_kafka_mock_request_timestamp": (c_int64, [c_void_p]),
    "rd_kafka_mock_request_destroy_array": (None, [POINTER(c_void_p), c_size_t]),
    "rd_kafka_mock_clear_requests": (None, [c_void_p]),
}


def find_librdkafka() -> Path:
    """The librdkafka bundled in the confluent-kafka wheel: the instance the Python client uses."""
    spec = importlib.util.find_spec("confluent_kafka")
    if spec is None or spec.origin is None:
        raise MockClusterError("confluent-kafka is not installed; the embedded broker needs it")
    package = Path(spec.origin).parent
    found = sorted(package.parent.glob("confluent_kafka.libs/librdkafka*.so*")) + sorted(
        package.glob(".dylibs/librdkafka*.dylib")
    )
    if not found:
        raise MockClusterError(
            f"no librdkafka bundled next to {package}: the embedded broker needs a confluent-kafka "
            "wheel (a source build linking a system librdkafka is not supported)"
        )
    return found[0]


def load_library(path: Path) -> ctypes.CDLL:
    """Load librdkafka with every function this module calls declared."""
    lib = ctypes.CDLL(str(path))
    for name, (restype, argtypes) in _SIGNATURES.items():
        try:
            function = getattr(lib, name)
        except AttributeError as exc:
            raise MockClusterError(f"{path.name} does not export {name}") from exc
        function.restype = restype
        function.argtypes = argtypes
    return lib


class MockCluster:
    """A mock Kafka cluster whose brokers live in this process's librdkafka threads.

    Clients anywhere reach it over TCP at :attr:`bootstrap_servers` (loopback only). Every method
    is thread-safe; after :meth:`close` they raise instead of touching freed memory.
    """

    def __init__(self, brokers: int, library: Path | None = None) -> None:
        if brokers < 1:
            raise MockClusterError(f"a mock cluster needs at least 1 broker, got {brokers}")
        self._lib = load_library(library or find_librdkafka())
        self._lock = threading.Lock()
        self._rk = self._new_handle()
        mc = self._lib.rd_kafka_mock_cluster_new(c_void_p(self._rk), c_int(brokers))
        if not mc:
            self._lib.rd_kafka_destroy(c_void_p(self._rk))
            raise MockClusterError(f"librdkafka could not create a mock cluster of {brokers}")
        self._mc: int | None = mc
        self._kept_requests: list[MockRequest] = []
        self.broker_count = brokers
        self.bootstrap_servers: str = self._lib.rd_kafka_mock_cluster_bootstraps(
            c_void_p(mc)
        ).decode()

    def _new_handle(self) -> int:
        """The rd_kafka_t that owns the cluster; it never connects anywhere itself."""
        conf = self._lib.rd_kafka_conf_new()
        errstr = ctypes.create_string_buffer(_ERRSTR_SIZE)
        # Level 4 hides the notice that this handle has no bootstrap.servers (by design).
        settings = {b"client.id": b"kedro-stream-embedded-broker", b"log_level": b"4"}
        for name, value in settings.items():
            res = self._lib.rd_kafka_conf_set(
                c_void_p(conf), name, value, errstr, c_size_t(_ERRSTR_SIZE)
            )
            if res != _CONF_OK:
                self._lib.rd_kafka_conf_destroy(c_void_p(conf))
                raise MockClusterError(f"rd_kafka_conf_set {name.decode()}: {errstr.value!r}")
        rk = self._lib.rd_kafka_new(
            c_int(_RK_PRODUCER), c_void_p(conf), errstr, c_size_t(_ERRSTR_SIZE)
        )
        if not rk:  # on failure the configuration is still ours to free
            self._lib.rd_kafka_conf_destroy(c_void_p(conf))
            raise MockClusterError(f"rd_kafka_new: {errstr.value.decode(errors='replace')}")
        return rk

    def close(self) -> None:
        """Destroy the cluster, then its handle (the other order makes librdkafka assert)."""
        with self._lock:
            if self._mc is None:
                return
            self._lib.rd_kafka_mock_cluster_destroy(c_void_p(self._mc))
            self._lib.rd_kafka_destroy(c_void_p(self._rk))
            self._mc = None

    def _call(self, name: str, *args: Any) -> Any:
        with self._lock:
            return self._call_locked(name, *args)

    def _call_locked(self, name: str, *args: Any) -> Any:
        if self._mc is None:
            raise MockClusterError(f"{name}: the mock cluster is closed")
        return getattr(self._lib, name)(c_void_p(self._mc), *args)

    def _check(self, name: str, *args: Any) -> None:
        err = self._call(name, *args)
        if err:
            label = self._lib.rd_kafka_err2name(c_int(err)).decode()
            text = self._lib.rd_kafka_err2str(c_int(err)).decode()
            raise MockClusterError(f"{name}: {label}: {text}")

    def create_topic(self, topic: str, partitions: int, replication_factor: int = 1) -> None:
        """Create a topic with any partition count (the mock has no CreateTopics handler)."""
        if partitions < 1:
            raise MockClusterError(f"a topic needs at least 1 partition, got {partitions}")
        if not 1 <= replication_factor <= self.broker_count:
            raise MockClusterError(
                f"replication_factor must be 1..{self.broker_count} (the broker count), "
                f"got {replication_factor}"
            )
        self._check(
            "rd_kafka_mock_topic_create",
            topic.encode(),
            c_int(partitions),
            c_int(replication_factor),
        )

    def broker_down(self, broker_id: int) -> None:
        """Disconnect a broker (-1: all) and refuse new connections; leaders stay where they are."""
        self._check("rd_kafka_mock_broker_set_down", c_int32(broker_id))

    def broker_up(self, broker_id: int) -> None:
        """Accept connections on a broker (-1: all) again."""
        self._check("rd_kafka_mock_broker_set_up", c_int32(broker_id))

    def set_rtt(self, broker_id: int, rtt_ms: int) -> None:
        """Delay every response of a broker (-1: all) by ``rtt_ms``."""
        self._check("rd_kafka_mock_broker_set_rtt", c_int32(broker_id), c_int(rtt_ms))

    def push_request_errors(self, api_key: int, errors: Sequence[int]) -> None:
        """Fail the next ``len(errors)`` requests of ``api_key`` to any broker, in order."""
        array = (c_int * len(errors))(*errors)
        self._call(
            "rd_kafka_mock_push_request_errors_array",
            c_int16(api_key),
            c_size_t(len(errors)),
            array,
        )

    def push_broker_request_errors(
        self, broker_id: int, api_key: int, errors: Sequence[int], rtts_ms: Sequence[int]
    ) -> None:
        """Answer the next requests of ``api_key`` to one broker with these errors (0: success)
        after these delays; a broker's errors take precedence over the cluster's."""
        if len(errors) != len(rtts_ms):
            raise MockClusterError(f"{len(errors)} errors but {len(rtts_ms)} rtts_ms")
        # One pair per call keeps the variadic argument list short; the stack keeps push order.
        for error, rtt_ms in zip(errors, rtts_ms, strict=True):
            self._check(
                "rd_kafka_mock_broker_push_request_error_rtts",
                c_int32(broker_id),
                c_int16(api_key),
                c_size_t(1),
                c_int(error),
                c_int(rtt_ms),
            )

    def broker_error_stack_count(self, broker_id: int, api_key: int) -> int:
        """How many of the errors pushed for one broker and ``api_key`` no request took yet:
        0 once a client met them all."""
        count = c_size_t(0)
        self._check(
            "rd_kafka_mock_broker_error_stack_cnt",
            c_int32(broker_id),
            c_int16(api_key),
            ctypes.byref(count),
        )
        return count.value

    def clear_request_errors(self, api_key: int) -> None:
        """Drop the cluster-wide errors still queued for ``api_key`` (broker ones cannot be)."""
        self._call("rd_kafka_mock_clear_request_errors", c_int16(api_key))

    def partition_set_leader(self, topic: str, partition: int, broker_id: int) -> None:
        """Move a partition's leadership (-1: leaderless); clients learn it from metadata."""
        self._check(
            "rd_kafka_mock_partition_set_leader",
            topic.encode(),
            c_int32(partition),
            c_int32(broker_id),
        )

    def coordinator_set(self, key_type: CoordinatorKeyType, key: str, broker_id: int) -> None:
        """Pin the coordinator of a group id or transactional id to a broker."""
        self._check(
            "rd_kafka_mock_coordinator_set", key_type.encode(), key.encode(), c_int32(broker_id)
        )

    def group_initial_rebalance_delay_ms(self, delay_ms: int) -> None:
        """How long a new group waits for more members before its first rebalance."""
        self._call("rd_kafka_mock_group_initial_rebalance_delay_ms", c_int32(delay_ms))

    def start_request_tracking(self) -> None:
        self._call("rd_kafka_mock_start_request_tracking")

    def stop_request_tracking(self) -> None:
        """Stop recording; what was recorded stays readable until :meth:`clear_requests`.

        librdkafka 2.16 discards the recorded requests on stop, contrary to its header, so they
        are copied here first (and cleared there, so a fixed librdkafka cannot double them).
        """
        with self._lock:
            self._kept_requests += self._read_requests_locked()
            self._call_locked("rd_kafka_mock_stop_request_tracking")
            self._call_locked("rd_kafka_mock_clear_requests")

    def clear_requests(self) -> None:
        with self._lock:
            self._kept_requests = []
            self._call_locked("rd_kafka_mock_clear_requests")

    def get_requests(self) -> list[MockRequest]:
        """The tracked requests in the order the cluster received them."""
        with self._lock:
            return self._kept_requests + self._read_requests_locked()

    def _read_requests_locked(self) -> list[MockRequest]:
        count = c_size_t(0)
        array = self._call_locked("rd_kafka_mock_get_requests", ctypes.byref(count))
        lib = self._lib
        try:
            return [
                MockRequest(
                    broker_id=lib.rd_kafka_mock_request_id(c_void_p(array[i])),
                    api_key=lib.rd_kafka_mock_request_api_key(c_void_p(array[i])),
                    timestamp_us=lib.rd_kafka_mock_request_timestamp(c_void_p(array[i])),
                )
                for i in range(count.value)
            ]
        finally:
            if array:
                lib.rd_kafka_mock_request_destroy_array(array, count)
