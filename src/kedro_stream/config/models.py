"""``stream.yml`` as pydantic models: what a valid file is, checked when it is read.

A bad file fails at start, naming the key and the allowed values; unknown keys are refused
rather than ignored (a typo in ``max_batch_size`` must not silently keep the default).
Secrets are referenced from ``credentials.yml`` (:mod:`kedro_stream.config.credentials`).
"""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)

from kedro_stream.config.credentials import refuse_inline_secrets

#: Where a client connects when neither stream.yml nor a flag says otherwise.
DEFAULT_BOOTSTRAP_SERVERS = "localhost:9092"
_STATE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
# Without a timeout the registry client waits forever on a registry that does not answer.
REGISTRY_TIMEOUT_S = 10
NO_REGISTRY = (
    "format avro-confluent needs kafka.schema_registry in stream.yml: its url, and "
    "credentials (a key of credentials.yml) when the registry wants a login"
)


class Guarantee(str, Enum):
    """What a committed batch promises: outputs at least once, or exactly once (Kafka
    transactions: outputs and offsets committed together)."""

    AT_LEAST_ONCE = "at-least-once"
    EXACTLY_ONCE = "exactly-once"


class Format(str, Enum):
    """How a topic's message values are written; each maps to a codec in ``serde``."""

    JSON = "json"
    AVRO = "avro"  # schemaless Avro body against a local .avsc
    AVRO_CONFLUENT = "avro-confluent"  # magic byte 0, schema id, Avro body; schema registry
    STRING = "string"
    BYTES = "bytes"


class OnFailure(str, Enum):
    """What a batch that still fails after its retries does (see ``service/loop.py``)."""

    # bisect the batch to the records that fail on their own, dead-letter those, and run and
    # commit the rest together, as if the poison records had never arrived
    ISOLATE = "isolate"
    DEAD_LETTER = "dead-letter"  # send the batch's records to the dead-letter topic, move on
    STOP = "stop"  # exit non-zero without committing: the batch is redelivered on restart


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class SchemaRegistryConfig(_Strict):
    """The Confluent Schema Registry of ``avro-confluent`` topics."""

    url: str = Field(
        description="The registry's URL; several, comma-separated, are tried in turn. No login "
        "in it: that goes in `credentials`."
    )
    credentials: str | None = Field(
        default=None,
        description="A key of credentials.yml holding the secrets (`basic.auth.user.info: "
        '"user:password"`).',
    )
    properties: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="Other SchemaRegistryClient properties (`ssl.ca.location`, `timeout`, "
        "`max.retries`, ...); no secrets, no `url`.",
    )
    _secrets: dict[str, SecretStr] = PrivateAttr(default_factory=dict)

    def client_properties(self) -> dict[str, Any]:
        """The SchemaRegistryClient configuration, secrets included."""
        return {
            "timeout": REGISTRY_TIMEOUT_S,
            **self.properties,
            "url": self.url,
            **{k: v.get_secret_value() for k, v in self._secrets.items()},
        }

    @field_validator("url")
    @classmethod
    def _no_login_in_url(cls, value: str) -> str:
        # The message must not quote the URL: its user info is the secret.
        if any("@" in urlsplit(part.strip()).netloc for part in value.split(",")):
            raise ValueError(
                "a login in the URL belongs in conf/local/credentials.yml as "
                "basic.auth.user.info, referenced by kafka.schema_registry.credentials"
            )
        return value

    @field_validator("properties")
    @classmethod
    def _no_inline_secrets(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "url" in value:
            raise ValueError("set the registry address as kafka.schema_registry.url")
        return refuse_inline_secrets(value, "kafka.schema_registry.credentials")


class KafkaConfig(_Strict):
    """How every client reaches the cluster: its address, librdkafka properties for all
    clients or one role, and the credentials.yml entry holding the secrets."""

    bootstrap_servers: str = Field(
        default=DEFAULT_BOOTSTRAP_SERVERS,
        description="The cluster's address; `--bootstrap-servers` or `KAFKA_BOOTSTRAP_SERVERS` "
        "override it.",
    )
    client: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="librdkafka properties of every client (`security.protocol`, "
        "`sasl.mechanism`, ...); an inline secret is refused.",
    )
    consumer: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="librdkafka properties of the consumer only, over `client`'s "
        "(`session.timeout.ms`, `group.protocol`, ...).",
    )
    producer: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="librdkafka properties of the producer only, over `client`'s.",
    )
    credentials: str | None = Field(
        default=None,
        description="A key of credentials.yml whose properties (`sasl.password`, "
        "`ssl.key.password`, ...) every client gets.",
    )
    schema_registry: SchemaRegistryConfig | None = Field(
        default=None, description="The schema registry, needed by format `avro-confluent`."
    )
    # Client properties from credentials.yml: private, so no dump, repr or log shows them.
    _secrets: dict[str, SecretStr] = PrivateAttr(default_factory=dict)

    def client_properties(self, role: Literal["consumer", "producer", "admin"]) -> dict[str, Any]:
        """The librdkafka configuration of one client, secrets included."""
        specific = {"consumer": self.consumer, "producer": self.producer}.get(role, {})
        return {
            "bootstrap.servers": self.bootstrap_servers,
            **self.client,
            **specific,
            **{k: v.get_secret_value() for k, v in self._secrets.items()},
        }

    @field_validator("client", "consumer", "producer")
    @classmethod
    def _no_inline_secrets(cls, value: dict[str, Any]) -> dict[str, Any]:
        return refuse_inline_secrets(value, "kafka.credentials")


class InputConfig(_Strict):
    """What the stream reads, and what the namespace receives it as (the injected dataset)."""

    topics: list[str] = Field(
        min_length=1, description="The topics read; a stateful stream reads exactly one."
    )
    dataset: str = Field(description="The namespace's input dataset each batch is injected as.")
    format: Format = Field(default=Format.JSON, description="How message values are read.")
    schema_path: Path | None = Field(
        default=None,
        alias="schema",
        description="An `.avsc` file: required by `avro`; `json` records are validated against "
        "it; `avro-confluent` resolves the registry's writer schema to it.",
    )
    data_type: Literal["pandas", "records"] = Field(
        default="pandas",
        description="`pandas`: a DataFrame with the schema's columns; `records`: a list of dicts.",
    )
    metadata_columns: bool = Field(
        default=False,
        description="Add `_key _topic _partition _offset _timestamp`; an output record that keeps "
        "them gets its source record's headers.",
    )


class OutputConfig(_Strict):
    """Where one output dataset of the namespace is published, and how it is written."""

    topic: str = Field(description="The topic the output's records are published to.")
    format: Format = Field(default=Format.JSON, description="How message values are written.")
    schema_path: Path | None = Field(
        default=None,
        alias="schema",
        description="An `.avsc` file: required by `avro` and `avro-confluent`.",
    )
    key: str | None = Field(
        default=None, description="A field of the output record used as the message key."
    )
    auto_register: bool = Field(
        default=True,
        description="`avro-confluent`: register the schema under `<topic>-value`; `false`: it "
        "must already be registered.",
    )


class BatchConfig(_Strict):
    """How big a micro-batch may grow, and how long an idle consumer waits to fill one."""

    max_size: PositiveInt = Field(default=1000, description="The most records a batch holds.")
    max_wait_ms: PositiveInt = Field(
        default=500,
        description="How long an idle consumer waits for a batch to fill; records already "
        "fetched make a batch at once.",
    )


class RetryConfig(_Strict):
    """How often a failing batch is run again, with exponential backoff, before
    ``on_failure`` applies."""

    attempts: PositiveInt = Field(
        default=3, description="Runs of a failing batch before `on_failure` applies."
    )
    backoff_ms: PositiveInt = Field(
        default=200, description="The wait before the first retry, doubled after each."
    )
    backoff_max_ms: PositiveInt = Field(
        default=10_000, description="The longest wait between two runs."
    )


class StateConfig(_Strict):
    """One per-key state of a stream, kept per input partition (see ``kedro_stream.state``)."""

    input: str = Field(
        description="The namespace's dataset injected with the current rows of the batch's keys."
    )
    updates: str = Field(
        description="The namespace's output of rows that replace them, one per changed key; "
        "`_deleted: true` removes a key."
    )
    key: str = Field(
        description="A column of the records, the rows and the updates; the input records' "
        "message key."
    )
    changelog_topic: str = Field(
        default="",
        description="The compacted topic a partition's store is restored from.",
        json_schema_extra={"default_text": "<group_id>-<state name>-changelog"},
    )


class StreamConfig(_Strict):
    """One stream: input topics → a namespace → output topics."""

    namespace: str | None = Field(
        default=None,
        description="The namespace the stream runs; `null`: the nodes without a namespace.",
    )
    pipeline: str = Field(
        default="__default__", description="The registered pipeline the namespace is taken from."
    )
    group_id: str = Field(
        description="The consumer group; instances with the same `group_id` share the partitions."
    )
    input: InputConfig = Field(description="What the stream reads.")
    outputs: dict[str, OutputConfig] = Field(
        default_factory=dict,
        description="Where each output is published, by the namespace's short dataset name.",
    )
    ignore_outputs: list[str] = Field(
        default_factory=list,
        description="Outputs of the namespace deliberately not published; any other "
        "unpublished output is warned of at start.",
    )
    state: dict[str, StateConfig] = Field(
        default_factory=dict,
        description="Per-key states, by name (letters, digits, `_`, `-`, `.`); they share one key.",
    )
    state_dir: Path = Field(
        default=Path("data/state"),
        description="Where each partition's state store lives; a relative path starts at the "
        "project.",
    )
    batch: BatchConfig = Field(
        default_factory=BatchConfig, description="How micro-batches are collected."
    )
    guarantee: Guarantee = Field(
        default=Guarantee.AT_LEAST_ONCE,
        description="`exactly-once`: outputs, dead letters and offsets in one transaction per "
        "batch.",
    )
    transactional_id: str | None = Field(
        default=None,
        description="`exactly-once`: the producer's `transactional.id`, stable per instance so "
        "a restarted one fences the old.",
        json_schema_extra={"default_text": "<group_id>-<hostname>"},
    )
    retry: RetryConfig = Field(
        default_factory=RetryConfig, description="How a failing batch is run again."
    )
    # stop by default: it commits nothing it could not process, so no result depends on
    # this choice. isolate (for per-record nodes) keeps one poison record from taking its batch
    # to the dead-letter topic; it judges records by running parts of the batch, so a node
    # whose outcome depends on the batch's other records (one that needs two rows, a check
    # of a batch total) can make good records look poison, or fail only together and send
    # the batch whole to the dead-letter topic as dead-letter would.
    on_failure: OnFailure = Field(
        default=OnFailure.STOP,
        description="What a batch that still fails after its retries does.",
    )
    dead_letter_topic: str = Field(
        default="",
        description="Where records that fail go, with their error in headers.",
        json_schema_extra={"default_text": "<first input topic>.dlq"},
    )
    max_poll_interval_s: PositiveFloat = Field(
        default=300.0,
        description="The consumer's `max.poll.interval.ms`, in seconds; `/readyz` fails while a "
        "batch runs longer.",
    )
    # The hung thread is abandoned, so prefer on_failure: stop, letting a restart reclaim it.
    run_timeout_s: PositiveFloat | None = Field(
        default=None,
        description="A run longer than this fails the batch (retry, then `on_failure`); `null`: "
        "no limit.",
    )
    commit_timeout_s: PositiveFloat = Field(
        default=30.0,
        description="How long one flush, or one transaction call, waits for the broker before "
        "the batch fails.",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_dead_letter_topic(cls, data: Any) -> Any:
        # Every stream has a dead-letter topic: a bad record is never skipped silently.
        if isinstance(data, dict) and not data.get("dead_letter_topic"):
            given = data.get("input")
            topics = given.topics if isinstance(given, InputConfig) else (given or {}).get("topics")
            if topics:
                data = {**data, "dead_letter_topic": f"{topics[0]}.dlq"}
        return data

    @model_validator(mode="after")
    def _avro_needs_schema(self) -> StreamConfig:
        # avro-confluent reads with the writer schema from the registry, but writes with ours.
        specs = [("input", self.input, (Format.AVRO,))]
        specs += [
            (name, spec, (Format.AVRO, Format.AVRO_CONFLUENT))
            for name, spec in self.outputs.items()
        ]
        for name, spec, needing in specs:
            if spec.format in needing and spec.schema_path is None:
                raise ValueError(
                    f"{name}: format {spec.format.value} needs a schema (path to an .avsc file)"
                )
        return self

    @model_validator(mode="before")
    @classmethod
    def _default_changelog_topics(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("state"), dict):
            return data
        group = data.get("group_id", "")
        states = {
            name: (
                {**spec, "changelog_topic": default_changelog_topic(group, name)}
                if isinstance(spec, dict) and not spec.get("changelog_topic")
                else spec
            )
            for name, spec in data["state"].items()
        }
        return {**data, "state": states}

    @model_validator(mode="after")
    def _state_is_per_partition_of_one_topic(self) -> StreamConfig:
        if self.state and len(self.input.topics) != 1:
            raise ValueError(
                "state: a stateful stream reads one topic, whose partitions its state follows; "
                f"input.topics has {len(self.input.topics)}"
            )
        keys = {spec.key for spec in self.state.values()}
        if len(keys) > 1:
            raise ValueError(
                f"state: the states of a stream share one key, the message key; got {sorted(keys)}"
            )
        for name in self.state:
            if not _STATE_NAME.fullmatch(name):
                raise ValueError(
                    f"state: name {name!r} names files and topics: use letters, digits, '_', "
                    "'-' and '.'"
                )
        return self

    @model_validator(mode="after")
    def _published_or_ignored(self) -> StreamConfig:
        both = sorted(set(self.ignore_outputs) & set(self.outputs))
        if both:
            raise ValueError(f"ignore_outputs: {both} are also published under outputs")
        return self

    def formats(self) -> set[Format]:
        """Every format the stream reads or writes."""
        return {self.input.format, *(spec.format for spec in self.outputs.values())}

    @property
    def state_key(self) -> str | None:
        """The one key of the stream's states (validated above), which is also the message key
        of its input records; ``None`` for a stateless stream."""
        return next(iter(self.state.values())).key if self.state else None


class StateQueriesConfig(_Strict):
    """``GET /state/<name>/<key>`` on the metrics port. State is business data and the port is
    often reachable from outside, so it is off by default and always wants a bearer token."""

    enabled: bool = Field(
        default=False, description="Serve `GET /state/<name>/<key>` on the metrics port."
    )
    credentials: str | None = Field(
        default=None,
        description="A key of credentials.yml holding the bearer token as `token`; required "
        "when enabled.",
    )
    # The token from credentials.yml: private, so no dump, repr or log shows it.
    _token: SecretStr | None = PrivateAttr(default=None)

    @property
    def token(self) -> SecretStr | None:
        """The bearer token; set by :func:`~kedro_stream.config.loading.parse_stream_file` when
        the endpoint is on."""
        return self._token

    @model_validator(mode="after")
    def _enabled_needs_credentials(self) -> StateQueriesConfig:
        if self.enabled and self.credentials is None:
            raise ValueError(
                "enabled state queries need credentials: a key of credentials.yml holding the "
                "bearer token as `token`"
            )
        return self


class MetricsConfig(_Strict):
    """The HTTP endpoint of metrics and probes, and how often lag is read."""

    port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Serve `/metrics`, `/healthz`, `/readyz` here (0 picks a free port; `null`: "
        "no server); `--metrics-port` overrides it.",
    )
    # Every interface by default: metrics are scraped from outside.
    host: str = Field(
        default="0.0.0.0",
        min_length=1,
        description="The interface the server listens on; `127.0.0.1` keeps it on the machine.",
    )
    lag_interval_s: PositiveFloat = Field(
        default=5.0,
        description="How often consumer lag is read from the broker, by a client off the loop's "
        "thread.",
    )
    state_queries: StateQueriesConfig = Field(
        default_factory=StateQueriesConfig, description="Interactive queries of per-key state."
    )


class StreamFile(_Strict):
    """The whole of ``stream.yml``."""

    kafka: KafkaConfig = Field(
        default_factory=KafkaConfig, description="How every client reaches the cluster."
    )
    metrics: MetricsConfig = Field(
        default_factory=MetricsConfig, description="The HTTP endpoint of metrics and probes."
    )
    streams: dict[str, StreamConfig] = Field(
        default_factory=dict, description="The streams, by name (any name)."
    )

    def readers(self, topic: str, *, stateful: bool = False) -> dict[str, StreamConfig]:
        """The streams that read ``topic``, by name; with ``stateful``, only those that keep
        state (whose records must be keyed by their state key)."""
        return {
            name: stream
            for name, stream in self.streams.items()
            if topic in stream.input.topics and (bool(stream.state) or not stateful)
        }

    @model_validator(mode="after")
    def _confluent_needs_registry(self) -> StreamFile:
        if self.kafka.schema_registry is None:
            for name, stream in self.streams.items():
                if Format.AVRO_CONFLUENT in stream.formats():
                    raise ValueError(f"streams.{name}: {NO_REGISTRY}")
        return self


def default_changelog_topic(group_id: str, state: str) -> str:
    """A state's changelog topic when ``stream.yml`` names none: per group, so that two
    deployments of one stream (two ``--group-id``) never share state."""
    return f"{group_id}-{state}-changelog"
