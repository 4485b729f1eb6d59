"""What dispatching training in segments costs, against one compiled loop.

  python -m benchmarks.segment_overhead --units=64 --layers=1 --variants=4

Times an epoch of --batches steps three ways: all steps in one dispatch,
auto-sized segments (about --segment_seconds each), and one step per
dispatch (the worst case). Reports seconds per step and the ratio to the
single dispatch; the median of --runs runs.
"""

from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags

from lstm_jax.model import LSTMForecaster
from lstm_jax.train import (
  SegmentSizer,
  create_train_states,
  make_train_steps,
  run_epoch,
)

flags.DEFINE_integer("units", 64, "LSTM width.")
flags.DEFINE_integer("layers", 1, "LSTM depth.")
flags.DEFINE_integer("variants", 4, "K.")
flags.DEFINE_integer("batches", 40, "Steps in the epoch.")
flags.DEFINE_integer("runs", 5, "Timed runs per way.")
flags.DEFINE_float("segment_seconds", 1.0, "Target of the auto segments.")
FLAGS = flags.FLAGS
BATCH, LENGTH = 256, 60


def main(argv):
  del argv
  model, tx = LSTMForecaster(FLAGS.units, FLAGS.layers), optax.adam(1e-3)
  k, batches = FLAGS.variants, FLAGS.batches
  series = jax.device_put(np.random.default_rng(0).normal(
      size=(batches * BATCH + LENGTH + 1, 1)).astype(np.float32))
  starts = jnp.arange(batches * BATCH)
  keys = jnp.stack([jax.random.key(i) for i in range(k)])
  rates = jnp.full((k,), 0.1)
  steps = make_train_steps(model, tx, LENGTH)
  state = {"s": create_train_states(model, tx, keys, 1, LENGTH)}
  ways = {"one dispatch": lambda: SegmentSizer(batches),
          "auto segments": lambda: SegmentSizer(0, FLAGS.segment_seconds),
          "1 step per dispatch": lambda: SegmentSizer(1)}
  seconds = {}
  for name, make_sizer in ways.items():
    times, sizer = [], make_sizer()  # one sizer for all epochs, as in training
    for run in range(FLAGS.runs + 1):
      tick = time.perf_counter()
      state["s"], loss, _ = run_epoch(steps, state["s"], series, starts, rates,
                                   keys, jax.random.key(0), run, BATCH,
                                   sizer)
      loss.block_until_ready()
      times.append(time.perf_counter() - tick)
    seconds[name] = statistics.median(times[1:]) / batches  # 0: warm-up
  base = seconds["one dispatch"]
  for name, per_step in seconds.items():
    print(f"{name:20s} {per_step * 1e3:8.2f} ms/step  {per_step / base:5.3f}x")


if __name__ == "__main__":
  app.run(main)
