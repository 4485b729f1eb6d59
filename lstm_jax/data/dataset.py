"""A series made ready for training: split, scaled, with its window sets.

The series' values stay where they are (often a memory map of a prepared
file); rows are scaled when a phase asks for them, a slice at a time.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from lstm_jax.config import LSTMConfig, shrink_windows
from lstm_jax.data.errors import DataError
from lstm_jax.data.io import Series
from lstm_jax.data.loader import WindowLoader
from lstm_jax.data.split import CHUNK, Scaler, Splits, split_rows


@dataclasses.dataclass(frozen=True)
class Windows:
  """Windows held on the host at once (validation, test, small training
  sets): rows [n, features] scaled float32, starts [windows] into them, and
  `offset`, the series row of rows[0]."""

  rows: np.ndarray
  starts: np.ndarray
  offset: int


def model_values(series: Series, target: str, lo: int, hi: int) -> np.ndarray:
  """Rows [lo, hi) as the model sees them before scaling, float64: the
  target (column 0) as `target` says (its level, change from the row
  before, or log ratio to it; 0 at row 0, which no window reads), the other
  features as they are."""
  if target == "level":
    out = np.asarray(series.values[lo:hi], np.float64)
  else:
    start = max(lo - 1, 0)
    out = np.array(series.values[start:hi], np.float64)
    level = out[:, 0] if target == "diff" else np.log(out[:, 0])
    change = np.diff(level, prepend=level[0] if lo == 0 else np.nan)
    out[:, 0] = change
    out = out[lo - start:]
  series.release()
  return out


@dataclasses.dataclass(frozen=True)
class Dataset:
  """A split series with its scaler. Windows read T rows and forecast the
  H (`horizon`) rows after them; a window belongs to the split its targets
  lie in, and may read the rows before it (the known past)."""

  series: Series
  splits: Splits
  scaler: Scaler
  config: LSTMConfig

  @property
  def features(self) -> int:
    return self.series.values.shape[1]

  @property
  def first_row(self) -> int:
    """The first row a window may read: 1 when the target is a change."""
    return 0 if self.config.target == "level" else 1

  def values(self, lo: int, hi: int) -> np.ndarray:
    return model_values(self.series, self.config.target, lo, hi)

  def scaled(self, lo: int, hi: int) -> np.ndarray:
    """Rows [lo, hi) scaled with training statistics, float32 (a copy: the
    pages read from a prepared file leave resident memory again)."""
    return self.scaler.transform(self.values(lo, hi))

  def _starts(self, target_lo: int, target_hi: int) -> tuple[int, int]:
    """[first, end) of the starts of the windows whose targets all lie in
    [target_lo, target_hi)."""
    c = self.config
    first = max(target_lo - c.sequence_length, self.first_row)
    return first, target_hi - c.sequence_length - c.horizon + 1

  def windows(self, target_lo: int, target_hi: int) -> Windows:
    """The windows whose targets lie in [target_lo, target_hi), on the host
    (they read rows, not windows: n + T + H - 1 rows for n windows)."""
    first, end = self._starts(target_lo, target_hi)
    starts = np.arange(end - first, dtype=np.int32)
    return Windows(self.scaled(first, target_hi), starts, first)

  def loader(self, target_lo: int, target_hi: int,
             shard: tuple[int, int] = (0, 1)) -> WindowLoader:
    """The windows whose targets lie in [target_lo, target_hi), streamed."""
    c = self.config
    first, end = self._starts(target_lo, target_hi)
    return WindowLoader(
        self.scaled, first, end, length=c.sequence_length, horizon=c.horizon,
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

  def level_statistics(self) -> tuple[float, float]:
    """The target's standard deviation over the training split and its mean
    absolute one-step change there (the MASE scale), original units."""
    end = self.splits.train_end

    def level(lo, hi):
      out = np.asarray(self.series.values[lo:hi, :1], np.float64)
      self.series.release()
      return out

    std = float(Scaler.fit(level, 0, end, self.series.source,
                           self.series.names[:1]).std[0])
    moves = 0.0
    for lo in range(0, end - 1, CHUNK):
      moves += np.abs(np.diff(level(lo, min(lo + CHUNK + 1, end))[:, 0])).sum()
    return std, float(moves / (end - 1))

  def levels(self, rows: np.ndarray) -> np.ndarray:
    """The target's original values at `rows` (any shape), float64."""
    flat = np.asarray(rows).ravel()
    out = np.asarray(self.series.values[flat, 0], np.float64)
    self.series.release()
    return out.reshape(np.shape(rows))

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
      summary["missing"] = series.meta["missing"]
      summary["read_options"] = series.meta["read_options"]
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
  first = 0 if config.target == "level" else 1
  config, notes = shrink_windows(
      config, max_train=splits.train_end - config.sequence_length - first,
      max_val=splits.val_end - splits.train_end, explicit=explicit)
  if config.target == "log_return":
    _check_positive(series, splits.test_end)
  scaler = Scaler.fit(
      functools.partial(model_values, series, config.target), first,
      splits.train_end, series.source, series.names)
  return Dataset(series, splits, scaler, config), notes


def _check_positive(series: Series, rows: int) -> None:
  for lo in range(0, rows, CHUNK):
    target = np.asarray(series.values[lo:min(lo + CHUNK, rows), 0])
    bad = np.flatnonzero(target <= 0)
    series.release()
    if bad.size:
      row = lo + int(bad[0])
      raise DataError(
          f"{series.source}: --target=log_return needs a positive series, but "
          f"column {series.name!r} is {target[bad[0]]:g} at row {row}; use "
          "--target=diff or --target=level")
