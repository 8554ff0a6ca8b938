"""Test support for kedro-stream users and its own suite: a broker for every machine.

Load the fixtures with ``pytest_plugins = ["kedro_stream.testing.pytest_plugin"]``.
"""

from kedro_stream.testing.brokers import BrokerHandle, BrokerKind, create_topic, unique_topic

__all__ = ["BrokerHandle", "BrokerKind", "create_topic", "unique_topic"]
