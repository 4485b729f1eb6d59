"""A series to forecast: its values (the target first, then any other input
features) with their names, source and row times; and the demo series."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lstm_jax.data.errors import DataError
from lstm_jax.data.prepare import ReadOptions, prepare

__all__ = ["DataError", "ReadOptions", "Series", "demo_series", "read_series"]


@dataclasses.dataclass(frozen=True)
class Series:
  """values: [rows, features] float32 in original units, often a memory map;
  column 0 is the target. times: [rows] int64 seconds, or None."""

  values: np.ndarray
  names: tuple[str, ...]
  source: str
  fingerprint: str
  times: np.ndarray | None = None
  meta: dict | None = None  # what preparing the file found (see prepare)
  release: Callable[[], None] = lambda: None  # drop pages read from a file

  @classmethod
  def from_values(cls, values, names, source: str) -> Series:
    """A series held in memory: 1-D values are one feature."""
    values = np.asarray(values, np.float32)
    values = values[:, None] if values.ndim == 1 else values
    names = (names,) if isinstance(names, str) else tuple(names)
    if len(names) != values.shape[1]:
      raise ValueError(f"{len(names)} names for {values.shape[1]} features")
    digest = hashlib.sha256(np.ascontiguousarray(values).tobytes())
    return cls(values, names, source, digest.hexdigest()[:16])

  @property
  def name(self) -> str:
    return self.names[0]

  @property
  def rows(self) -> int:
    return int(self.values.shape[0])

  def gap_note(self) -> str | None:
    """One line on the gaps in the time index, or None when it has none."""
    meta = self.meta or {}
    if not meta.get("gaps"):
      return None
    step, largest = meta["time_step_seconds"], meta["largest_gap_seconds"]
    gaps = f"{meta['gaps']} gap" + ("s" if meta["gaps"] > 1 else "")
    return (f"{self.source}: {gaps} in the time index (usual "
            f"step {_duration(step)}, largest gap {_duration(largest)}); "
            "windows read across them, as is normal for market closures")

  def time_note(self) -> str | None:
    """One line when a column named like times could not be read as times
    (its rows' order is then unchecked), or None."""
    note = (self.meta or {}).get("time_note")
    return f"{self.source}: {note}" if note else None

  def time_at(self, row: int) -> str | None:
    if self.times is None:
      return None
    return str(np.datetime64(int(self.times[row]), "s")).replace("T", " ")


def _duration(seconds: int) -> str:
  days, rest = divmod(int(seconds), 86400)
  clock = str(np.timedelta64(rest, "s").astype("timedelta64[s]").item())
  return f"{days} d {clock}" if days else clock


def read_series(path: str, column: str | None, features: tuple[str, ...] = (),
                cache_dir: Path | None = None,
                options: ReadOptions | None = None) -> Series:
  """`column` (the target) and `features` of a CSV (any delimiter, `.gz`
  too), Parquet or `.npy` file, through its prepared, memory-mapped form;
  `options` say how missing values and decimal marks are read."""
  prepared = prepare(path, column, tuple(features), cache_dir, options)
  meta = prepared.meta
  return Series(prepared.values, tuple(meta["columns"]), meta["source"],
                meta["hash"], prepared.times, meta, prepared.release)


def demo_series(rows: int = 6000, seed: int = 0) -> Series:
  """A synthetic hourly series: daily and weekly cycles, trend, AR(1) noise."""
  rng = np.random.default_rng(seed)
  t = np.arange(rows, dtype=np.float64)
  noise = np.zeros(rows)
  shocks = rng.normal(0.0, 1.0, rows)
  for i in range(1, rows):
    noise[i] = 0.8 * noise[i - 1] + shocks[i]
  values = (20.0 + 0.002 * t + 6.0 * np.sin(2 * np.pi * t / 24)
            + 3.0 * np.sin(2 * np.pi * t / 168) + noise)
  source = f"synthetic demo series ({rows} rows, seed {seed}; not real data)"
  return Series.from_values(values, "demo", source)
