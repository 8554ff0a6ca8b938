"""kedro-stream's version, at the floor: the metrics report it, the package publishes it."""

__version__ = "0.1.0"
