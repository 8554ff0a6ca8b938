"""``kedro-stream`` (``python -m kedro_stream``): commands that need no Kedro project.

Imports no Kedro, so ``broker``'s first stdout line is its bootstrap line in any directory.
"""

from __future__ import annotations

import click

from kedro_stream.devbroker.cli import broker

__all__ = ["main"]


@click.group(name="kedro-stream", context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """kedro-stream commands that run outside a Kedro project."""


main.add_command(broker)

if __name__ == "__main__":
    main(prog_name="python -m kedro_stream")
