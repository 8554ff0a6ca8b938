"""A small Kedro project that exercises every dataset role of a compiled session."""
