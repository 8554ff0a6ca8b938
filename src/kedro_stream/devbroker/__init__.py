"""The embedded development/test broker: librdkafka's mock Kafka cluster in a process of its own,
with fault injection. For development and tests only; it keeps everything in memory.

- :mod:`~kedro_stream.devbroker.cluster`: ctypes bindings to the mock cluster (``MockCluster``),
  and the fault API, declared once (``FaultApi``).
- :mod:`~kedro_stream.devbroker.control`: the HTTP control endpoint serving that API, and
  ``FaultInjector``, its client for any process.
- :mod:`~kedro_stream.devbroker.process`: the broker process (``serve``) and ``EmbeddedBroker``,
  which starts one as a child and stops it.
- :mod:`~kedro_stream.devbroker.forward`: the TCP forwarder behind ``--port``.
- :mod:`~kedro_stream.devbroker.cli`: the broker command (``python -m kedro_stream.devbroker``,
  ``kedro-stream broker``, ``kedro stream broker``).

Nothing is imported here on purpose: ``python -m kedro_stream.devbroker`` must find neither its
``__main__`` already imported (runpy warns) nor Kedro (see ``kedro_stream/__init__.py``).
"""
