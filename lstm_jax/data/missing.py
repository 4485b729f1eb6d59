"""Missing values in a file being prepared: refused, filled or dropped.

Blocks of rows stream through `handle_missing`, so a file of any size is
handled a block at a time. Missing cells arrive as NaN (the readers turn
empty cells and the tokens of NULL_TOKENS into NaN). The policies:

  error        stop, naming how many cells miss and the first file lines;
  ffill        carry each column's last value forward;
  interpolate  a straight line in row order between the values either side;
  drop         leave out every row with a missing cell.

Rows that no value comes before (ffill, interpolate) or after (interpolate)
cannot be filled; they are left out and counted. Infinite values and values
beyond float32's range are never filled: the file must be fixed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import numpy as np

from lstm_jax.data.errors import DataError

POLICIES = ("error", "ffill", "interpolate", "drop")
# Cell texts read as missing (besides an empty cell).
NULL_TOKENS = ("NaN", "nan", "NA", "N/A", "n/a", "null", "NULL", "None", "-",
               "#N/A")
FLOAT32_MAX = float(np.finfo(np.float32).max)
_LISTED = 5  # file lines named in a message


@dataclasses.dataclass
class Block:
  """Rows of a file: values [n, features] float64 (NaN: missing), times
  [n] int64 seconds or None, and the first row's data row number."""

  values: np.ndarray
  times: np.ndarray | None
  first_row: int


@dataclasses.dataclass
class MissingStats:
  """What `handle_missing` found and did, for the prepared file's record."""

  policy: str
  cells: int = 0  # missing cells
  rows_dropped: int = 0
  first_rows: list[int] = dataclasses.field(default_factory=list)
  per_column: dict[str, int] = dataclasses.field(default_factory=dict)

  def to_dict(self) -> dict:
    return dict(policy=self.policy, cells=self.cells,
                rows_dropped=self.rows_dropped)


def check_values(block: Block, columns: list[str], path: str,
                 where: Callable[[int], str]) -> None:
  """Refuses infinite values and values float32 cannot hold."""
  finite = np.isfinite(block.values)
  bad = ~finite & ~np.isnan(block.values)
  if bad.any():
    row, col = (int(i) for i in np.argwhere(bad)[0])
    raise DataError(
        f"{path}: column {columns[col]!r} has infinite values (first at "
        f"{where(block.first_row + row)}, {int(bad[:, col].sum())} in that "
        "part of the file); replace or remove them")
  huge = finite & (np.abs(np.where(finite, block.values, 0)) > FLOAT32_MAX)
  if huge.any():
    row, col = (int(i) for i in np.argwhere(huge)[0])
    raise DataError(
        f"{path}: column {columns[col]!r} holds {block.values[row, col]:g} at "
        f"{where(block.first_row + row)}, beyond float32's range (about "
        f"{FLOAT32_MAX:.3g}); rescale the column, e.g. divide it by 1e6")


def handle_missing(blocks: Iterator[Block], policy: str, columns: list[str],
                   path: str, where: Callable[[int], str],
                   stats: MissingStats) -> Iterator[Block]:
  """The blocks with their missing cells handled by `policy`; `stats` is
  filled in as they pass. With "error", the whole file is read (to count)
  before the DataError."""
  if policy not in POLICIES:
    raise ValueError(f"unknown missing-value policy {policy!r}")
  fill = {"error": _Keep, "drop": _Drop, "ffill": _ForwardFill,
          "interpolate": _Interpolate}[policy](stats)
  for block in blocks:
    missing = np.isnan(block.values)
    if missing.any():
      _count(block, missing, columns, stats)
    yield from fill.block(block, missing)
  yield from fill.finish()
  if policy == "error" and stats.cells:
    places = [where(r).rsplit(" ", 1) for r in stats.first_rows]
    unit = places[0][0] + ("s" if len(places) > 1 else "")
    more = ", ..." if len(places) < stats.cells else ""
    counts = " and ".join(f"{name!r} ({n})" for name, n in
                          stats.per_column.items())
    column = "columns" if len(stats.per_column) > 1 else "column"
    raise DataError(
        f"{path}: {stats.cells} missing values (empty, NaN, NA, null or - cells) "
        f"in {column} {counts}, first at {unit} "
        f"{', '.join(p[1] for p in places)}{more}; fill them in, or choose "
        "--missing=ffill, --missing=interpolate or --missing=drop")


def _count(block: Block, missing: np.ndarray, columns: list[str],
           stats: MissingStats) -> None:
  stats.cells += int(missing.sum())
  for col in np.flatnonzero(missing.any(axis=0)):
    name = columns[col]
    stats.per_column[name] = (stats.per_column.get(name, 0)
                              + int(missing[:, col].sum()))
  room = _LISTED - len(stats.first_rows)
  if room > 0:
    rows = np.flatnonzero(missing.any(axis=1))[:room]
    stats.first_rows += [block.first_row + int(r) for r in rows]


def _rows(block: Block, keep: np.ndarray, values=None) -> Block:
  values = block.values if values is None else values
  times = None if block.times is None else block.times[keep]
  return Block(values[keep], times, block.first_row)


class _Keep:
  """error: the blocks pass as they are (nothing is written in the end)."""

  def __init__(self, stats: MissingStats):
    self.stats = stats

  def block(self, block: Block, missing: np.ndarray) -> Iterator[Block]:
    yield block

  def finish(self) -> Iterator[Block]:
    return iter(())


class _Drop(_Keep):
  def block(self, block: Block, missing: np.ndarray) -> Iterator[Block]:
    keep = ~missing.any(axis=1)
    self.stats.rows_dropped += int((~keep).sum())
    yield _rows(block, keep)


class _ForwardFill(_Keep):
  def __init__(self, stats: MissingStats):
    super().__init__(stats)
    self.last: np.ndarray | None = None  # [features], NaN: no value yet

  def block(self, block: Block, missing: np.ndarray) -> Iterator[Block]:
    values = block.values
    if self.last is None:
      self.last = np.full(values.shape[1], np.nan)
    if missing.any():
      values = values.copy()
      rows = np.arange(len(values))
      for col in np.flatnonzero(missing.any(axis=0)):
        source = np.where(missing[:, col], -1, rows)
        np.maximum.accumulate(source, out=source)
        values[:, col] = np.where(source >= 0,
                                  values[np.maximum(source, 0), col],
                                  self.last[col])
    if len(values):
      seen = ~np.isnan(values)
      self.last = np.where(seen.any(axis=0), _last_seen(values, seen),
                           self.last)
    # Only rows before a column's first value can still miss one.
    keep = ~np.isnan(values).any(axis=1)
    self.stats.rows_dropped += int((~keep).sum())
    yield _rows(block, keep, values)


def _last_seen(values: np.ndarray, seen: np.ndarray) -> np.ndarray:
  """Each column's last value that is not NaN (NaN where there is none)."""
  index = len(values) - 1 - np.argmax(seen[::-1], axis=0)
  return values[index, np.arange(values.shape[1])]


class _Interpolate(_Keep):
  """Holds back the rows after the last complete row of a block until a
  later complete row bounds them."""

  def __init__(self, stats: MissingStats):
    super().__init__(stats)
    self.before: np.ndarray | None = None  # the last complete row so far
    self.pending: Block | None = None

  def block(self, block: Block, missing: np.ndarray) -> Iterator[Block]:
    if self.pending is not None:
      block = _joined(self.pending, block)
      missing = np.isnan(block.values)
    complete = np.flatnonzero(~missing.any(axis=1))
    if not complete.size:
      self.pending = block
      return
    end = int(complete[-1]) + 1
    head = Block(block.values[:end], None if block.times is None
                 else block.times[:end], block.first_row)
    self.pending = (Block(block.values[end:], None if block.times is None
                          else block.times[end:], block.first_row + end)
                    if end < len(block.values) else None)
    values = head.values
    if missing[:end].any():
      values = values.copy()
      rows = np.arange(end, dtype=np.float64)
      for col in np.flatnonzero(missing[:end].any(axis=0)):
        known = ~missing[:end, col]
        at, value = rows[known], values[known, col]
        if self.before is not None:
          at, value = np.r_[-1.0, at], np.r_[self.before[col], value]
        filled = np.interp(rows, at, value)
        filled[rows < at[0]] = np.nan  # nothing before to draw the line from
        values[:, col] = filled
    self.before = values[-1]
    keep = ~np.isnan(values).any(axis=1)
    self.stats.rows_dropped += int((~keep).sum())
    yield _rows(head, keep, values)

  def finish(self) -> Iterator[Block]:
    if self.pending is not None:  # rows after the last complete one
      self.stats.rows_dropped += len(self.pending.values)
    return iter(())


def _joined(a: Block, b: Block) -> Block:
  times = None if a.times is None else np.concatenate([a.times, b.times])
  return Block(np.concatenate([a.values, b.values]), times, a.first_row)
