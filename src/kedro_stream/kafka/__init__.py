"""Production Kafka plumbing: client factories (``clients``), what a ``KafkaException`` says
(``errors``), and the file producer behind ``kedro stream produce`` (``file_producer``).

The development/test broker is elsewhere: :mod:`kedro_stream.devbroker`.
"""
