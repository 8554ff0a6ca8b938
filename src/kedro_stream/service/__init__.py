"""The consume → run → produce → commit loop and its commit protocols."""
