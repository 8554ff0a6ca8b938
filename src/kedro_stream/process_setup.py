"""What a ``kedro stream`` command does to its process first, whatever the project's settings.

A user's project keeps Kedro's defaults: rich logging on stdout, the root logger at WARNING,
kedro-telemetry installed. For a long-running service that means machine-readable lines
(``metrics=...``) mixed with log records on stdout, the service's own progress never shown, and
an HTTP call to a telemetry endpoint when the command ends. So, for these commands only:

- log records go to stderr; stdout carries only the lines scripts read;
- ``kedro_stream`` INFO records are shown unless the project's logging config sets a level;
- kedro-telemetry's command hook is unregistered (its project hooks are, at boot);
- OmegaConf's notice that Kedro uses a deprecated resolver API is silenced: it is not the
  user's to act on, and it repeats for every config loader Kedro builds.

Kedro itself configures logging and logs "Using ... as logging configuration" on import, before
any plugin code runs: that one line cannot be moved. ``kedro-stream broker`` imports no Kedro.
"""

from __future__ import annotations

import logging
import sys
import warnings

from rich.logging import RichHandler

from kedro_stream.telemetry import unregister_telemetry

_OWN_LOGGER = "kedro_stream"
_QUIET_WARNINGS = r"register_new_resolver\(\) is deprecated"


def prepare_command_process() -> None:
    """Apply every adjustment above; idempotent."""
    _logs_to_stderr()
    _show_own_progress()
    warnings.filterwarnings("ignore", message=_QUIET_WARNINGS, category=UserWarning)
    _unregister_cli_telemetry()


def _handlers() -> list[logging.Handler]:
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    return [handler for logger in loggers for handler in logger.handlers]


def _logs_to_stderr() -> None:
    for handler in _handlers():
        if isinstance(handler, RichHandler):
            if handler.console.file is sys.stdout:
                handler.console.file = sys.stderr
        elif isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
            handler.setStream(sys.stderr)


def _show_own_progress() -> None:
    own = logging.getLogger(_OWN_LOGGER)
    if own.level == logging.NOTSET:
        own.setLevel(logging.INFO)
    if not own.hasHandlers():  # a config without any handler: Python would print WARNING+ only
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        own.addHandler(handler)


def _unregister_cli_telemetry() -> None:
    """Its command event is sent after the command returns: a service stopping on SIGTERM
    would wait on it."""
    from kedro.framework.cli.hooks import get_cli_hook_manager

    unregister_telemetry(get_cli_hook_manager())
