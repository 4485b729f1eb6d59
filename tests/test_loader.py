"""The streaming loader: every window once an epoch, across chunk seams."""

import jax.numpy as jnp
import numpy as np
import pytest

from lstm_jax.data import WindowLoader
from lstm_jax.train import gather_windows

LENGTH = 6
SERIES = np.arange(1200, dtype=np.float32).reshape(600, 2)  # row r: 2r, 2r+1


def _loader(chunk_windows, first=10, end=513, batch_size=16, seed=0,
            shard=(0, 1)):
  return WindowLoader(lambda lo, hi: SERIES[lo:hi], first, end,
                      length=LENGTH, batch_size=batch_size,
                      chunk_windows=chunk_windows, seed=seed, features=2,
                      shard=shard)


def _epoch(loader, epoch):
  """(start rows in visiting order, windows gathered from the chunks)."""
  seen, shapes = [], set()
  for chunk_id in loader.chunk_order(epoch):
    chunk = loader.load(epoch, chunk_id)
    shapes.add((chunk.rows.shape, chunk.order.shape))
    lo = loader.bounds[chunk_id][0]
    order = np.asarray(chunk.order)[:chunk.batches]
    weights = np.asarray(chunk.weights)[:chunk.batches]
    real = order[weights > 0]
    assert np.asarray(chunk.weights)[chunk.batches:].sum() == 0
    x, y = gather_windows(chunk.rows, jnp.asarray(real), LENGTH)
    starts = real + lo
    # What the chunk holds is exactly what the whole series holds there.
    np.testing.assert_array_equal(np.asarray(y)[:, 0],
                                  SERIES[starts + LENGTH, 0])
    np.testing.assert_array_equal(
        np.asarray(x), SERIES[starts[:, None] + np.arange(LENGTH)])
    seen.append(starts)
  assert len(shapes) == 1  # one compiled program serves every chunk
  return np.concatenate(seen)


@pytest.mark.parametrize("chunk_windows", [1, 7, 16, 100, 503, 504, 10**6])
def test_every_window_once_an_epoch_across_seams(chunk_windows):
  loader = _loader(chunk_windows)
  starts = _epoch(loader, 0)
  np.testing.assert_array_equal(np.sort(starts), np.arange(10, 513))
  assert loader.windows == 503


def test_epochs_differ_and_the_seed_decides():
  a0, a1 = _epoch(_loader(100), 0), _epoch(_loader(100), 1)
  assert not np.array_equal(a0, a1)
  np.testing.assert_array_equal(a0, _epoch(_loader(100), 0))
  assert not np.array_equal(a0, _epoch(_loader(100, seed=1), 0))
  assert _loader(100).chunk_order(0) != _loader(100).chunk_order(3) or (
      _loader(100).chunk_order(1) != _loader(100).chunk_order(2))


def test_shards_side_by_side_are_the_batches_of_one_process():
  whole = _loader(100, batch_size=12)
  shards = [_loader(100, batch_size=12, shard=(i, 3)) for i in range(3)]
  for epoch in (0, 1):
    for chunk in range(whole.chunks):
      order, weights = whole.starts(epoch, chunk)
      parts = [s.starts(epoch, chunk) for s in shards]
      assert parts[0][0].shape == (9, 4)  # ceil(100 / 12) steps, 12 / 3
      np.testing.assert_array_equal(np.hstack([p[0] for p in parts]), order)
      np.testing.assert_array_equal(np.hstack([p[1] for p in parts]),
                                    weights)
  assert {s.batches_of(5) for s in shards} == {1}  # 3 windows: one step
  assert {s.windows for s in shards} == {503}
  with pytest.raises(ValueError, match="does not split into 5 equal parts"):
    _loader(100, batch_size=12, shard=(0, 5))


def test_a_chunk_holds_only_its_rows():
  loader = _loader(100)
  assert loader.chunk_rows == 100 + LENGTH
  assert loader.chunks == 6 and loader.bounds[-1] == (510, 513)
