"""payment-fraud: the example Kedro project whose ``scoring`` namespace kedro-stream serves."""

__version__ = "0.1"
