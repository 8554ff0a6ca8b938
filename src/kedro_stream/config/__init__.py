"""``stream.yml``: what it may say (:mod:`.models`), where its secrets come from
(:mod:`.credentials`), how it is read through Kedro (:mod:`.loading`) from a project's source
tree or package (:mod:`.project`), and how a command picks and overrides one stream of it
(:mod:`.selection`). Nothing here runs a stream."""

from kedro_stream.config.credentials import SECRET_KEYS
from kedro_stream.config.errors import ConfigError, NoStreamFile
from kedro_stream.config.loading import (
    STREAM_PATTERNS,
    command_stream_file,
    load_stream_file,
    parse_stream_file,
    read_stream_file,
)
from kedro_stream.config.models import (
    DEFAULT_BOOTSTRAP_SERVERS,
    NO_REGISTRY,
    REGISTRY_TIMEOUT_S,
    BatchConfig,
    Format,
    Guarantee,
    InputConfig,
    KafkaConfig,
    MetricsConfig,
    OnFailure,
    OutputConfig,
    RetryConfig,
    SchemaRegistryConfig,
    StateConfig,
    StateQueriesConfig,
    StreamConfig,
    StreamFile,
    default_changelog_topic,
)
from kedro_stream.config.project import Project, check_conf_source
from kedro_stream.config.selection import apply_overrides, select_stream

__all__ = [
    "DEFAULT_BOOTSTRAP_SERVERS",
    "NO_REGISTRY",
    "REGISTRY_TIMEOUT_S",
    "SECRET_KEYS",
    "STREAM_PATTERNS",
    "BatchConfig",
    "ConfigError",
    "Format",
    "Guarantee",
    "InputConfig",
    "KafkaConfig",
    "MetricsConfig",
    "NoStreamFile",
    "OnFailure",
    "OutputConfig",
    "Project",
    "RetryConfig",
    "SchemaRegistryConfig",
    "StateConfig",
    "StateQueriesConfig",
    "StreamConfig",
    "StreamFile",
    "apply_overrides",
    "check_conf_source",
    "command_stream_file",
    "default_changelog_topic",
    "load_stream_file",
    "parse_stream_file",
    "read_stream_file",
    "select_stream",
]
