"""Training windows streamed in chunks of rows, never as a window array.

A window starting at row s reads rows s .. s + T - 1 and predicts rows
s + T .. s + T + H - 1.
The windows to train on (a range of start rows) are cut into chunks of
`chunk_windows` consecutive starts; a chunk's rows are those its windows
read, so neighbouring chunks overlap by T + H - 1 rows and no window is
lost at a seam. Each epoch visits the chunks in an order shuffled from
(seed, epoch)
and a chunk's windows in an order shuffled from (seed, epoch, chunk). A
chunk is scaled on the host, moved to the device once, and its windows are
gathered there from start indices. Every chunk has the same array shapes
(the shorter last one is padded), so one compiled program serves them all;
a chunk whose windows do not fill its last batch pads that batch with
masked windows, so every window counts exactly once an epoch.

Host memory holds one chunk's rows at a time, whatever the series' length.
The chunk size is a setting with a fixed default, never derived from the
machine, so the same settings give the same batches everywhere.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import numpy as np


@dataclasses.dataclass(frozen=True)
class Chunk:
  """One chunk on the device: rows [rows, features], and batches of window
  starts into them, order [batches, batch_size] with weights (0: padding).
  Only the first `batches` rows of `order` are real."""

  rows: jax.Array
  order: jax.Array
  weights: jax.Array
  batches: int
  windows: int


class WindowLoader:
  """Chunks of the windows whose starts lie in [first, end).

  `rows(lo, hi)` returns the scaled float32 rows [hi - lo, features]. With
  `shard` = (index, count), this process takes every count-th window of
  each shuffled chunk, starting at `index` (for data-parallel training over
  several processes); batch counts are equal across shards.
  """

  def __init__(self, rows: Callable[[int, int], np.ndarray], first: int,
               end: int, *, length: int, batch_size: int, chunk_windows: int,
               seed: int, features: int = 1, horizon: int = 1,
               shard: tuple[int, int] = (0, 1)):
    if end <= first:
      raise ValueError(f"no windows: starts [{first}, {end})")
    self._rows, self.first, self.end = rows, first, end
    self.length, self.batch_size, self.seed = length, batch_size, seed
    self.features, self.shard, self.horizon = features, shard, horizon
    size = min(chunk_windows, end - first)
    self.bounds = [(lo, min(lo + size, end)) for lo in range(first, end, size)]
    self.reach = length + horizon - 1  # rows past a start a window reads
    self.chunk_rows = size + self.reach  # the rows a full chunk's windows read
    index, count = shard
    self.max_batches = math.ceil(math.ceil(size / count) / batch_size)

  @property
  def windows(self) -> int:
    """Windows this shard trains on in an epoch."""
    index, count = self.shard
    return sum(len(range(index, hi - lo, count)) for lo, hi in self.bounds)

  @property
  def chunks(self) -> int:
    return len(self.bounds)

  def chunk_order(self, epoch: int) -> list[int]:
    """The order an epoch visits the chunks in."""
    rng = np.random.default_rng([self.seed, epoch])
    return rng.permutation(self.chunks).tolist()

  def batches_of(self, chunk: int) -> int:
    """Steps the chunk takes: the same in every shard (the largest shard's),
    so that processes training together step together."""
    lo, hi = self.bounds[chunk]
    return math.ceil(math.ceil((hi - lo) / self.shard[1]) / self.batch_size)

  def shapes(self) -> Chunk:
    """The shapes every chunk has (for compiling ahead of time)."""
    return Chunk(
        jax.ShapeDtypeStruct((self.chunk_rows, self.features), np.float32),
        jax.ShapeDtypeStruct((self.max_batches, self.batch_size), np.int32),
        jax.ShapeDtypeStruct((self.max_batches, self.batch_size), np.float32),
        self.max_batches, 0)

  def starts(self, epoch: int, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """The chunk's batches as absolute start rows [max_batches, batch_size]
    and weights; what `load` puts on the device, relative to the chunk."""
    lo, hi = self.bounds[chunk]
    rng = np.random.default_rng([self.seed, epoch, chunk])
    index, count = self.shard
    mine = rng.permutation(hi - lo)[index::count].astype(np.int32)
    slots = self.max_batches * self.batch_size
    order = np.full(slots, mine[0], np.int32)
    order[:mine.size] = mine
    weights = np.zeros(slots, np.float32)
    weights[:mine.size] = 1.0
    shape = (self.max_batches, self.batch_size)
    return (order + lo).reshape(shape), weights.reshape(shape)

  def load(self, epoch: int, chunk: int) -> Chunk:
    lo, hi = self.bounds[chunk]
    order, weights = self.starts(epoch, chunk)
    rows = np.zeros((self.chunk_rows, self.features), np.float32)
    rows[:hi - lo + self.reach] = self._rows(lo, hi + self.reach)
    return Chunk(jax.device_put(rows), jax.device_put(order - lo),
                 jax.device_put(weights), self.batches_of(chunk),
                 int(weights.sum()))
