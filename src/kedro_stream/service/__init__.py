"""The stream service: the loop that runs one micro-batch at a time through the commit protocol.

``loop.py`` reads top to bottom as the protocol; each stage has its own module:
``batch.py`` (collect), ``decode.py``, ``encode.py``, ``messages.py`` (outgoing messages and
dead letters), ``commit.py`` (at-least-once and exactly-once), ``rebalance.py`` (owned and
revoked partitions), ``keepalive.py`` (long runs stay in the group), ``retry.py`` (backoff),
``progress.py`` (what a commit counts). ``wiring.py`` and ``codecs.py`` check and translate
stream.yml once at start; ``app.py`` builds a running service from a project.
"""
