"""A series made ready for training: split, scaled, with its window sets.

The series' values stay where they are (often a memory map of a prepared
file); rows are scaled when a phase asks for them, a slice at a time.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lstm_jax.config import LSTMConfig, shrink_windows
from lstm_jax.data.io import Series
from lstm_jax.data.loader import WindowLoader
from lstm_jax.data.split import Scaler, Splits, split_rows


@dataclasses.dataclass(frozen=True)
class Windows:
  """Windows held on the host at once (validation, test, small training
  sets): rows [n, features] scaled float32, starts [windows] into them, and
  `offset`, the series row of rows[0]."""

  rows: np.ndarray
  starts: np.ndarray
  offset: int


@dataclasses.dataclass(frozen=True)
class Dataset:
  series: Series
  splits: Splits
  scaler: Scaler
  config: LSTMConfig

  @property
  def features(self) -> int:
    return self.series.values.shape[1]

  def scaled(self, lo: int, hi: int) -> np.ndarray:
    """Rows [lo, hi) scaled with training statistics, float32 (a copy: the
    pages read from a prepared file leave resident memory again)."""
    rows = self.scaler.transform(self.series.values[lo:hi])
    self.series.release()
    return rows

  def _first_start(self, target_lo: int) -> int:
    return max(target_lo - self.config.sequence_length, 0)

  def windows(self, target_lo: int, target_hi: int) -> Windows:
    """The windows whose targets lie in [target_lo, target_hi), on the host
    (they read rows, not windows: n + T rows for n windows)."""
    first = self._first_start(target_lo)
    starts = np.arange(target_hi - self.config.sequence_length - first,
                       dtype=np.int32)
    return Windows(self.scaled(first, target_hi), starts, first)

  def loader(self, target_lo: int, target_hi: int,
             shard: tuple[int, int] = (0, 1)) -> WindowLoader:
    """The windows whose targets lie in [target_lo, target_hi), streamed."""
    c = self.config
    return WindowLoader(
        self.scaled, self._first_start(target_lo),
        target_hi - c.sequence_length, length=c.sequence_length,
        batch_size=c.batch_size, chunk_windows=c.chunk_windows, seed=c.seed,
        features=self.features, shard=shard)

  def search_data(self) -> tuple[WindowLoader, Windows]:
    """The optimization windows: targets in the last rows of the training
    split, scored on windows with targets in the first rows of the
    validation split."""
    end, c = self.splits.train_end, self.config
    return (self.loader(end - c.optimization_train_window, end),
            self.windows(end, end + c.optimization_val_window))

  def fit_data(self, shard: tuple[int, int] = (0, 1)
               ) -> tuple[WindowLoader, Windows]:
    """Every training window (streamed) and every validation window."""
    s = self.splits
    return (self.loader(0, s.train_end, shard),
            self.windows(s.train_end, s.val_end))

  def test_data(self) -> Windows:
    return self.windows(self.splits.val_end, self.splits.test_end)

  def summary(self) -> dict:
    s, series = self.splits, self.series
    bounds = {"train": (0, s.train_end), "val": (s.train_end, s.val_end),
              "test": (s.val_end, s.test_end)}
    summary = {
        "source": series.source,
        "column": series.name,
        "features": list(series.names),
        "rows": series.rows,
        "fingerprint": series.fingerprint,
        "splits": {
            name: {"first_row": lo, "end_row": hi, "rows": hi - lo,
                   "first_time": series.time_at(lo),
                   "last_time": series.time_at(hi - 1)}
            for name, (lo, hi) in bounds.items()},
        "scaler": self.scaler.to_dict(),
    }
    if series.meta:
      summary["time_gaps"] = {k: series.meta[k] for k in (
          "time_step_seconds", "gaps", "largest_gap_seconds")}
    return summary


def prepare_dataset(
    series: Series, config: LSTMConfig, explicit: frozenset[str] = frozenset()
) -> tuple[Dataset, list[str]]:
  """Splits `series` and fits the scaler; shrinks default windows to fit.

  Returns the dataset (holding the adjusted config) and notes on what was
  adjusted. `explicit` names the config fields the user set, which must fit
  as given.
  """
  splits = split_rows(series.rows, config, series.source)
  config, notes = shrink_windows(
      config, max_train=splits.train_end - config.sequence_length,
      max_val=splits.val_end - splits.train_end, explicit=explicit)
  scaler = Scaler.fit(series.values[: splits.train_end], series.source,
                      series.names, release=series.release)
  return Dataset(series, splits, scaler, config), notes
