"""A series made ready for training: split, scaled, with its window sets."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from lstm_jax.config import LSTMConfig, shrink_windows
from lstm_jax.data.io import Series
from lstm_jax.data.split import Scaler, Splits, split_rows, window_starts


@dataclasses.dataclass(frozen=True)
class Dataset:
  """scaled: [rows, 1] float32, z-scored with training-split statistics."""

  series: Series
  splits: Splits
  scaler: Scaler
  scaled: np.ndarray
  config: LSTMConfig

  def _starts(self, lo: int, hi: int) -> np.ndarray:
    return window_starts(lo, hi, self.config.sequence_length)

  def search_windows(self) -> tuple[np.ndarray, np.ndarray]:
    """Starts of the optimization windows: the last rows of the training
    split, scored on the first rows of the validation split."""
    end, c = self.splits.train_end, self.config
    return (self._starts(end - c.optimization_train_window, end),
            self._starts(end, end + c.optimization_val_window))

  def fit_windows(self) -> tuple[np.ndarray, np.ndarray]:
    """Starts of every training window and every validation window."""
    s = self.splits
    return (self._starts(0, s.train_end),
            self._starts(s.train_end, s.val_end))

  def test_windows(self) -> np.ndarray:
    return self._starts(self.splits.val_end, self.splits.test_end)

  def fingerprint(self) -> str:
    """Hash of the values the run reads (all splits)."""
    used = self.series.values[: self.splits.test_end]
    return hashlib.sha256(np.ascontiguousarray(used).tobytes()).hexdigest()[:16]

  def summary(self) -> dict:
    s, series = self.splits, self.series
    bounds = {"train": (0, s.train_end), "val": (s.train_end, s.val_end),
              "test": (s.val_end, s.test_end)}
    return {
        "source": series.source,
        "column": series.name,
        "rows": int(series.values.shape[0]),
        "fingerprint": self.fingerprint(),
        "splits": {
            name: {"first_row": lo, "end_row": hi, "rows": hi - lo,
                   "first_time": series.time_at(lo),
                   "last_time": series.time_at(hi - 1)}
            for name, (lo, hi) in bounds.items()},
        "scaler": {"mean": self.scaler.mean, "std": self.scaler.std},
    }


def prepare_dataset(
    series: Series, config: LSTMConfig, explicit: frozenset[str] = frozenset()
) -> tuple[Dataset, list[str]]:
  """Splits and scales `series`; shrinks default windows to fit.

  Returns the dataset (holding the adjusted config) and notes on what was
  adjusted. `explicit` names the config fields the user set, which must fit
  as given.
  """
  splits = split_rows(series.values.shape[0], config, series.source)
  config, notes = shrink_windows(
      config, max_train=splits.train_end - config.sequence_length,
      max_val=splits.val_end - splits.train_end, explicit=explicit)
  scaler = Scaler.fit(series.values[: splits.train_end], series.source)
  scaled = scaler.transform(series.values).astype(np.float32)[:, None]
  return Dataset(series, splits, scaler, scaled, config), notes
