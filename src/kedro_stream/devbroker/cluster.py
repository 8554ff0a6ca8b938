"""ctypes bindings to librdkafka's mock cluster API (``rdkafka_mock.h``), and the fault API.

Hand-rolled because no Python package exposes the mock cluster's fault injection: confluent-kafka
only lets a client *host* a mock cluster (``test.mock.num.brokers``), with no handle to steer it.
The functions are exported by the librdkafka bundled in the confluent-kafka wheel, so the bindings
load that exact library. The API is marked experimental upstream; every symbol is declared once in
``_SIGNATURES`` (checked against librdkafka 2.16) so a renamed one fails loudly at load time.

The fault API is declared here and nowhere else: the public methods of :class:`FaultApi`. A
:class:`MockCluster` runs them on itself; the control endpoint serves exactly those, and
:class:`~kedro_stream.devbroker.control.FaultInjector`, another ``FaultApi``, has each of them run
in the broker process, with the same signature and docstring. Adding a fault is one method on
``FaultApi`` (plus its C function in ``_SIGNATURES`` if it calls a new one). Arguments and results
cross a process boundary as JSON: keep them to numbers, strings, lists and, for results, lists of
dataclasses.
"""

from __future__ import annotations

import ctypes
import importlib.util
import threading
from collections.abc import Callable, Sequence
from ctypes import POINTER, c_char_p, c_int, c_int16, c_int32, c_int64, c_size_t, c_void_p
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from kedro_stream.errors import KedroStreamError

#: Partition count the mock gives topics it auto-creates (metadata requests, produce); librdkafka
#: has no API to change it, so other counts need :meth:`MockCluster.create_topic`.
AUTO_CREATE_PARTITIONS = 4
#: The session and heartbeat the broker gives members under ``group.protocol: consumer``.
GROUP_SESSION_MS = 6000
GROUP_HEARTBEAT_MS = 500

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
    "rd_kafka_mock_set_group_consumer_session_timeout_ms": (None, [c_void_p, c_int]),
    "rd_kafka_mock_set_group_consumer_heartbeat_interval_ms": (None, [c_void_p, c_int]),
    "rd_kafka_mock_topic_create": (c_int, [c_void_p, c_char_p, c_int, c_int]),
    "rd_kafka_mock_broker_set_down": (c_int, [c_void_p, c_int32]),
    "rd_kafka_mock_broker_set_up": (c_int, [c_void_p, c_int32]),
    "rd_kafka_mock_broker_set_rtt": (c_int, [c_void_p, c_int32, c_int]),
    # Returns void: an unknown broker id is ignored without a word.
    "rd_kafka_mock_broker_set_host_port": (None, [c_void_p, c_int32, c_char_p, c_int]),
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


class FaultApi:
    """What can be done to a running mock cluster: topics, faults, request tracking, reset.

    Every public method here is the fault API (see the module docstring): :class:`MockCluster`
    runs it in this process, ``FaultInjector`` in the broker process it controls.

    Broker ids start at 1; -1 means every broker where the mock allows it (down, up, rtt).
    Error codes are Kafka's (``confluent_kafka.KafkaError.NOT_ENOUGH_REPLICAS`` and friends).
    """

    # Set up by MockCluster, with the handle they belong to.
    _lib: ctypes.CDLL
    _lock: threading.Lock
    _mc: int | None
    _broker_count: int
    _kept_requests: list[MockRequest]
    #: API keys given cluster-wide errors, which reset() clears (librdkafka cannot list them).
    _errored_api_keys: set[int]
    _initial_rebalance_delay_ms: int

    def create_topic(self, topic: str, partitions: int, replication_factor: int = 1) -> None:
        """Create a topic with any partition count (the mock has no CreateTopics handler)."""
        if partitions < 1:
            raise MockClusterError(f"a topic needs at least 1 partition, got {partitions}")
        if not 1 <= replication_factor <= self._broker_count:
            raise MockClusterError(
                f"replication_factor must be 1..{self._broker_count} (the broker count), "
                f"got {replication_factor}"
            )
        self._check(
            "rd_kafka_mock_topic_create",
            topic.encode(),
            c_int(partitions),
            c_int(replication_factor),
        )

    def broker_down(self, broker_id: int) -> None:
        """Disconnect a broker's clients (-1: all brokers) and refuse new connections; partition
        leaders do not move."""
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
        with self._lock:
            self._call_locked(
                "rd_kafka_mock_push_request_errors_array",
                c_int16(api_key),
                c_size_t(len(errors)),
                array,
            )
            self._errored_api_keys.add(int(api_key))

    def push_broker_request_errors(
        self,
        broker_id: int,
        api_key: int,
        errors: Sequence[int],
        rtts_ms: Sequence[int] | None = None,
    ) -> None:
        """Answer the next requests of ``api_key`` to one broker with ``errors`` (0: success),
        each after its ``rtts_ms`` delay (default: none); these win over
        :meth:`push_request_errors`."""
        if rtts_ms is None:
            rtts_ms = [0] * len(errors)
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
        """Drop the errors :meth:`push_request_errors` queued for ``api_key`` that no request
        consumed yet (per-broker ones cannot be dropped)."""
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
        """Pin the coordinator of a ``"group"`` id or a ``"transaction"``-al id to a broker."""
        self._check(
            "rd_kafka_mock_coordinator_set", key_type.encode(), key.encode(), c_int32(broker_id)
        )

    def group_initial_rebalance_delay_ms(self, delay_ms: int) -> None:
        """How long a new group waits for more members before its first rebalance."""
        self._call("rd_kafka_mock_group_initial_rebalance_delay_ms", c_int32(delay_ms))

    def start_request_tracking(self) -> None:
        """Record every request the cluster receives, for :meth:`get_requests`."""
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
        """Forget the requests recorded so far."""
        with self._lock:
            self._kept_requests = []
            self._call_locked("rd_kafka_mock_clear_requests")

    def get_requests(self) -> list[MockRequest]:
        """Requests received while tracking was on, in arrival order."""
        with self._lock:
            return self._kept_requests + self._read_requests_locked()

    def reset(self) -> None:
        """All brokers up, no RTT, no queued cluster-wide errors, tracking off and cleared, the
        start-up rebalance delay: what tests commonly change, so one cluster can serve a whole
        test session. Topics, leaders, coordinators and per-broker errors remain."""
        self.broker_up(-1)
        self.set_rtt(-1, 0)
        with self._lock:
            errored, self._errored_api_keys = self._errored_api_keys, set()
        for api_key in sorted(errored):
            self.clear_request_errors(api_key)
        self.stop_request_tracking()
        self.clear_requests()
        self.group_initial_rebalance_delay_ms(self._initial_rebalance_delay_ms)

    # ------------------------------------------------ the C plumbing the methods above stand on

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


class MockCluster(FaultApi):
    """A mock Kafka cluster whose brokers live in this process's librdkafka threads.

    Clients anywhere reach it over TCP at :attr:`bootstrap_servers` (loopback only). Every method
    is thread-safe; after :meth:`close` they raise instead of touching freed memory.
    """

    def __init__(
        self, brokers: int, initial_rebalance_delay_ms: int = 0, library: Path | None = None
    ) -> None:
        """``initial_rebalance_delay_ms``: how long a new group waits for more members before
        its first rebalance (0: not at all, unlike librdkafka's default); :meth:`reset` restores
        it."""
        if brokers < 1:
            raise MockClusterError(f"a mock cluster needs at least 1 broker, got {brokers}")
        self._lib = load_library(library or find_librdkafka())
        self._lock = threading.Lock()
        self._rk = self._new_handle()
        mc = self._lib.rd_kafka_mock_cluster_new(c_void_p(self._rk), c_int(brokers))
        if not mc:
            self._lib.rd_kafka_destroy(c_void_p(self._rk))
            raise MockClusterError(f"librdkafka could not create a mock cluster of {brokers}")
        self._mc = mc
        self._kept_requests = []
        self._errored_api_keys = set()
        self._initial_rebalance_delay_ms = initial_rebalance_delay_ms
        self._broker_count = brokers
        #: Where each broker listens, ``HOST:PORT`` by broker id (1 first), comma-separated.
        self.bootstrap_servers: str = self._lib.rd_kafka_mock_cluster_bootstraps(
            c_void_p(mc)
        ).decode()
        self.group_initial_rebalance_delay_ms(initial_rebalance_delay_ms)
        # Under the next-generation group protocol (KIP-848) the broker, not the client, sets
        # the session: a killed member's partitions move on after it (Kafka's default, 45 s,
        # is long for development; the example's classic session is 6 s).
        self._call("rd_kafka_mock_set_group_consumer_session_timeout_ms", c_int(GROUP_SESSION_MS))
        self._call(
            "rd_kafka_mock_set_group_consumer_heartbeat_interval_ms", c_int(GROUP_HEARTBEAT_MS)
        )

    def advertise(self, broker_id: int, host: str, port: int) -> None:
        """Name ``host:port`` as broker ``broker_id``'s address in metadata, where clients go
        after bootstrapping; the broker still listens where it did (``--port`` forwards)."""
        if not 1 <= broker_id <= self._broker_count:
            raise MockClusterError(f"no broker {broker_id} in a cluster of {self._broker_count}")
        self._call(
            "rd_kafka_mock_broker_set_host_port", c_int32(broker_id), host.encode(), c_int(port)
        )

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


#: The fault API by method name, in declaration order: the public methods of FaultApi.
FAULT_METHODS: MappingProxyType[str, Callable[..., Any]] = MappingProxyType(
    {
        name: member
        for name, member in vars(FaultApi).items()
        if callable(member) and not name.startswith("_")
    }
)
