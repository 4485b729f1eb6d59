"""Reading series, splitting them in time, scaling, window indices."""

from lstm_jax.data.dataset import Dataset, prepare_dataset
from lstm_jax.data.io import DataError, Series, demo_series, read_series
from lstm_jax.data.split import Scaler, Splits, split_rows, window_starts

__all__ = [
    "DataError", "Dataset", "Scaler", "Series", "Splits", "demo_series",
    "prepare_dataset", "read_series", "split_rows", "window_starts",
]
