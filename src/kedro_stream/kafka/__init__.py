"""Kafka plumbing: the embedded development/test broker and its fault injection.

Nothing is imported here on purpose: ``python -m kedro_stream.kafka.embedded`` must not find
its own module already imported by the package (runpy warns, and the child would pay for it).
"""
