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

  rows: jax.Array  # or NumPy arrays, from `WindowLoader.host`
  order: jax.Array
  weights: jax.Array
  batches: int
  windows: int


class WindowLoader:
  """Chunks of the windows whose starts lie in [first, end).

  `rows(lo, hi)` returns the scaled float32 rows [hi - lo, features]. With
  `shard` = (index, count), this process supplies the index-th of `count`
  equal column blocks of every batch (for data-parallel training over
  several processes): the shards' blocks side by side are exactly the
  batches of one process, so results do not depend on the process count.
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
    if batch_size % shard[1]:
      raise ValueError(f"a batch of {batch_size} does not split into "
                       f"{shard[1]} equal parts")
    self.columns = batch_size // shard[1]  # this shard's part of a batch
    self.max_batches = math.ceil(size / batch_size)

  @property
  def windows(self) -> int:
    """Windows an epoch trains on (all shards' together)."""
    return self.end - self.first

  @property
  def chunks(self) -> int:
    return len(self.bounds)

  def chunk_order(self, epoch: int) -> list[int]:
    """The order an epoch visits the chunks in."""
    rng = np.random.default_rng([self.seed, epoch])
    return rng.permutation(self.chunks).tolist()

  def batches_of(self, chunk: int) -> int:
    """Steps the chunk takes (the same in every shard)."""
    lo, hi = self.bounds[chunk]
    return math.ceil((hi - lo) / self.batch_size)

  def shapes(self) -> Chunk:
    """The shapes every chunk has on the devices, all shards' columns
    together (for compiling ahead of time)."""
    return Chunk(
        jax.ShapeDtypeStruct((self.chunk_rows, self.features), np.float32),
        jax.ShapeDtypeStruct((self.max_batches, self.batch_size), np.int32),
        jax.ShapeDtypeStruct((self.max_batches, self.batch_size),
                             np.float32),
        self.max_batches, 0)

  def starts(self, epoch: int, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """This shard's columns of the chunk's batches, as absolute start rows
    [max_batches, columns], and their weights (0: padding)."""
    lo, hi = self.bounds[chunk]
    rng = np.random.default_rng([self.seed, epoch, chunk])
    shuffled = rng.permutation(hi - lo).astype(np.int32)
    slots = self.max_batches * self.batch_size
    order = np.full(slots, shuffled[0], np.int32)
    order[:shuffled.size] = shuffled
    weights = np.zeros(slots, np.float32)
    weights[:shuffled.size] = 1.0
    shape = (self.max_batches, self.batch_size)
    mine = slice(self.shard[0] * self.columns,
                 (self.shard[0] + 1) * self.columns)
    return ((order + lo).reshape(shape)[:, mine],
            weights.reshape(shape)[:, mine])

  def host(self, epoch: int, chunk: int) -> Chunk:
    """The chunk with host (NumPy) arrays, starts relative to its rows."""
    lo, hi = self.bounds[chunk]
    order, weights = self.starts(epoch, chunk)
    rows = np.zeros((self.chunk_rows, self.features), np.float32)
    rows[:hi - lo + self.reach] = self._rows(lo, hi + self.reach)
    return Chunk(rows, order - lo, weights, self.batches_of(chunk),
                 int(weights.sum()))

  def load(self, epoch: int, chunk: int) -> Chunk:
    """The chunk on the default device."""
    chunk = self.host(epoch, chunk)
    return dataclasses.replace(
        chunk, rows=jax.device_put(chunk.rows),
        order=jax.device_put(chunk.order),
        weights=jax.device_put(chunk.weights))
