"""``python -m kedro_stream.devbroker``: the broker command (:mod:`kedro_stream.devbroker.cli`);
what :class:`~kedro_stream.devbroker.process.EmbeddedBroker` spawns."""

from kedro_stream.devbroker.cli import broker

if __name__ == "__main__":
    broker(prog_name="python -m kedro_stream.devbroker")
