"""Reading and preparing series, splits in time, scaling, window loaders."""

from lstm_jax.data.dataset import Dataset, Windows, prepare_dataset
from lstm_jax.data.errors import ColumnError, DataError
from lstm_jax.data.io import ReadOptions, Series, demo_series, read_series
from lstm_jax.data.loader import Chunk, WindowLoader
from lstm_jax.data.split import Scaler, Splits, split_rows, window_starts

__all__ = [
    "Chunk", "ColumnError", "DataError", "Dataset", "ReadOptions", "Scaler",
    "Series", "Splits", "WindowLoader", "Windows", "demo_series",
    "prepare_dataset", "read_series", "split_rows", "window_starts",
]
