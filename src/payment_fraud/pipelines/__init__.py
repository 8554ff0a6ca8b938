"""Pipelines of the payment-fraud example: data_generation, training and scoring."""
