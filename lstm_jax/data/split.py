"""Chronological splits, training-split scaling, and window start indices.

A window starting at row s reads rows s .. s + T - 1 and predicts row s + T.
Its target decides which split it belongs to; its inputs may come from the
rows before the split (the known past).
"""

from __future__ import annotations

import dataclasses

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
  shortest = config.sequence_length + 1
  if min(train - config.sequence_length, val, test) < 1:
    least = max(needed, _fewest_rows(config))
    raise DataError(
        f"{source}: {rows} rows are too few for --sequence_length="
        f"{config.sequence_length} and these splits; at least {least} rows "
        f"are needed (the training split needs more than {shortest - 1})")
  return Splits(train, train + val, train + val + test)


def _fewest_rows(config: LSTMConfig) -> int:
  if config.train_rows > 0:
    return config.train_rows + config.val_rows + max(config.test_rows, 1)
  shares = (config.train_fraction, config.val_fraction, config.test_fraction)
  need = (config.sequence_length + 1, 1, 1)
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
  def fit(cls, train_values: np.ndarray, source: str,
          names: tuple[str, ...] = ("value",),
          release=lambda: None) -> Scaler:
    """Two passes of CHUNK rows each over [rows, features] values; after
    each chunk `release()` may drop what was read from resident memory."""
    rows = train_values.shape[0]
    total = np.zeros(train_values.shape[1])
    for lo in range(0, rows, CHUNK):
      total += train_values[lo:lo + CHUNK].sum(axis=0, dtype=np.float64)
      release()
    mean = total / rows
    squares = np.zeros_like(mean)
    for lo in range(0, rows, CHUNK):
      squares += ((train_values[lo:lo + CHUNK] - mean) ** 2).sum(axis=0)
      release()
    std = np.sqrt(squares / rows)
    for name, value, spread in zip(names, train_values[0], std, strict=True):
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
