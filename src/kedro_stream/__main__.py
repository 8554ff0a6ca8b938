"""``kedro-stream`` (``python -m kedro_stream``): every ``kedro stream`` command, without the
``kedro`` CLI around it.

It is how a packaged project runs (``kedro-stream consume --package NAME --conf-source
conf-NAME.tar.gz``: no source tree, no ``pyproject.toml``), and how ``broker`` runs anywhere.
The project commands are imported only when one is asked for: importing Kedro configures its
logging on stdout, and ``broker``'s first stdout line must be its bootstrap line.
"""

from __future__ import annotations

import click

from kedro_stream.devbroker.cli import broker

__all__ = ["main"]

# Those of kedro_stream.cli's ``stream`` group, listed here so that help needs no Kedro.
PROJECT_COMMANDS = ("compile", "consume", "produce", "lag", "reset")


class _Commands(click.Group):
    """``broker`` at once; the project commands from :mod:`kedro_stream.cli` when asked for
    (click's documented lazy-loading pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *PROJECT_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in PROJECT_COMMANDS:
            return super().get_command(ctx, cmd_name)
        from kedro_stream.cli import stream
        from kedro_stream.process_setup import prepare_command_process

        prepare_command_process()
        return stream.get_command(ctx, cmd_name)


@click.group(
    name="kedro-stream",
    cls=_Commands,
    context_settings={"help_option_names": ["-h", "--help"]},
)
def main() -> None:
    """kedro-stream commands: those of `kedro stream`, for a project in the working directory
    or an installed one (--package), and the development broker."""


main.add_command(broker)

if __name__ == "__main__":
    main(prog_name="python -m kedro_stream")
