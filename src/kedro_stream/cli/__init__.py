"""``kedro stream ...``: one module per command, each parsing its flags, building objects from
the rooms below and running them. Errors come out as one ``Error:`` line (:mod:`.errors`); what
commands print is in :mod:`.printers`.

Kedro finds the commands through the ``kedro.global_commands`` entry point
(``kedro_stream.cli:commands``): inside a project they get its metadata, elsewhere they run an
installed one named by ``--package`` (:mod:`.options`). The development broker needs no
project: its command is the same one as ``kedro-stream broker`` (:mod:`kedro_stream.devbroker.cli`).
"""

from __future__ import annotations

import click

from kedro_stream.cli.compile import compile_command
from kedro_stream.cli.consume import consume_command
from kedro_stream.cli.lag import lag_command
from kedro_stream.cli.produce import produce_command
from kedro_stream.cli.reset import reset_command
from kedro_stream.devbroker.cli import broker
from kedro_stream.process_setup import prepare_command_process


@click.group(name="kedro-stream")
def commands() -> None:
    """Kedro project commands contributed by kedro-stream."""


@commands.group()
def stream() -> None:
    """Run pipeline namespaces as Kafka stream processors."""
    prepare_command_process()


for _command in (
    compile_command,
    consume_command,
    produce_command,
    broker,
    lag_command,
    reset_command,
):
    stream.add_command(_command)
