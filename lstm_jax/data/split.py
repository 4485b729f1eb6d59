"""Chronological splits, training-split scaling, and window start indices.

A window starting at row s reads rows s .. s + T - 1 and predicts row s + T.
Its target decides which split it belongs to; its inputs may come from the
rows before the split (the known past).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from lstm_jax.config import LSTMConfig
from lstm_jax.data.errors import DataError

CHUNK = 1 << 20  # rows per pass when reading a (memory-mapped) split


@dataclasses.dataclass(frozen=True)
class Splits:
  """Row boundaries: train [0, train_end), val [train_end, val_end), test
  [val_end, test_end)."""

  train_end: int
  val_end: int
  test_end: int


def split_rows(rows: int, config: LSTMConfig, source: str) -> Splits:
  """The chronological split of `rows` rows, checked against the window."""
  if config.train_rows > 0:
    train, val = config.train_rows, config.val_rows
    test = config.test_rows or rows - train - val
    needed = train + val + max(test, 1)
  else:
    train = int(rows * config.train_fraction)
    val = int(rows * config.val_fraction)
    test = rows - train - val
    needed = 0
  if needed > rows:
    raise DataError(
        f"{source}: --train_rows, --val_rows and --test_rows ask for "
        f"{needed} rows but there are {rows}; lower them")
  shortest = config.sequence_length + config.horizon
  if min(train - shortest + 1, val - config.horizon + 1,
         test - config.horizon + 1) < 1:
    least = max(needed, _fewest_rows(config))
    raise DataError(
        f"{source}: {rows} rows are too few for --sequence_length="
        f"{config.sequence_length}, --horizon={config.horizon} and these "
        f"splits; at least {least} rows are needed (the training split needs "
        f"more than {shortest - 1})")
  if config.season > train + val:  # its forecasts would read rows before 0
    raise DataError(
        f"{source}: --season={config.season} is longer than the "
        f"{train + val} rows before the test split; the seasonal baseline "
        "needs a whole season of history: lower --season")
  return Splits(train, train + val, train + val + test)


def _fewest_rows(config: LSTMConfig) -> int:
  if config.train_rows > 0:
    return config.train_rows + config.val_rows + max(config.test_rows, 1)
  shares = (config.train_fraction, config.val_fraction, config.test_fraction)
  need = (config.sequence_length + config.horizon, config.horizon,
          config.horizon)
  return int(np.ceil(max(n / s for n, s in zip(need, shares, strict=True)))) + 1


@dataclasses.dataclass(frozen=True)
class Scaler:
  """z-scoring of each feature with statistics of the training split alone;
  the target is feature 0."""

  mean: np.ndarray  # [features] float64
  std: np.ndarray

  def __post_init__(self):
    object.__setattr__(self, "mean", np.atleast_1d(np.asarray(self.mean,
                                                              np.float64)))
    object.__setattr__(self, "std", np.atleast_1d(np.asarray(self.std,
                                                             np.float64)))

  @classmethod
  def fit(cls, read: Callable[[int, int], np.ndarray], lo: int, hi: int,
          source: str, names: tuple[str, ...] = ("value",)) -> Scaler:
    """Statistics of rows [lo, hi), which `read(a, b)` returns as [b - a,
    features]; two passes of CHUNK rows each (a long split stays on disk)."""
    rows = hi - lo
    total = 0.0
    for a in range(lo, hi, CHUNK):
      total = total + read(a, min(a + CHUNK, hi)).sum(axis=0, dtype=np.float64)
    mean = np.asarray(total) / rows
    squares = np.zeros_like(mean)
    for a in range(lo, hi, CHUNK):
      squares += ((read(a, min(a + CHUNK, hi)) - mean) ** 2).sum(axis=0)
    std = np.sqrt(squares / rows)
    first = read(lo, lo + 1)[0]
    for name, value, spread in zip(names, first, std, strict=True):
      if not spread > 0:
        raise DataError(f"{source}: column {name!r} is constant ({value:g}) "
                        "in the training split; nothing to learn from")
    return cls(mean, std)

  def transform(self, values: np.ndarray) -> np.ndarray:
    """[rows, features] original units -> float32 scaled."""
    return ((values - self.mean) / self.std).astype(np.float32)

  def inverse(self, values: np.ndarray) -> np.ndarray:
    """Scaled target values -> original units (float64)."""
    return np.asarray(values, np.float64) * self.std[0] + self.mean[0]

  def to_dict(self) -> dict:
    return {"mean": self.mean.tolist(), "std": self.std.tolist()}


def window_starts(target_lo: int, target_hi: int, length: int) -> np.ndarray:
  """Start rows of the windows whose targets lie in [target_lo, target_hi)."""
  first = max(target_lo - length, 0)
  return np.arange(first, target_hi - length, dtype=np.int32)
