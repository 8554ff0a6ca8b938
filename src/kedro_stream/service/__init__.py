"""The stream service: the loop that takes one micro-batch at a time through the commit protocol.

``loop.py`` reads top to bottom as the protocol, one line a step (decode, read state, run, encode
outputs, encode state, publish, commit, apply state); each step's work is a module of its own,
and so are the failure paths beside it (``isolation.py``, ``giving_up.py``), start-up
(``startup.py``) and the idle stop (``idle.py``). ``parts.py`` builds what the steps use, once,
from stream.yml and the compiled namespace; ``app.py`` builds a running service from a project.
"""
