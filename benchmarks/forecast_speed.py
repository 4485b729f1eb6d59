"""Test-split forecasting speed: every window in device batches.

  python -m benchmarks.forecast_speed --windows=100000 --units=256 --layers=2

Times `make_predict` (jitted; batches of PREDICT_BATCH windows in a scan)
over --windows windows of length 60 of a random series, after a warm-up
call that compiles; prints one JSON line.
"""

from __future__ import annotations

import json
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from lstm_jax.model import LSTMForecaster
from lstm_jax.train import compiler_options, make_predict

flags.DEFINE_integer("windows", 100_000, "Windows to forecast.")
flags.DEFINE_integer("units", 256, "LSTM width.")
flags.DEFINE_integer("layers", 2, "LSTM depth.")
flags.DEFINE_integer("length", 60, "Window length.")
FLAGS = flags.FLAGS


def time_forecast(units: int, layers: int, windows: int,
                  length: int = 60) -> dict:
  """Seconds to forecast `windows` windows with a (units, layers) model,
  after a first call that compiles."""
  model = LSTMForecaster(units, layers)
  series = jax.device_put(np.random.default_rng(0).normal(
      size=(windows + length, 1)).astype(np.float32))
  starts = jnp.arange(windows, dtype=jnp.int32)
  params = model.init(jax.random.key(0), jnp.zeros((1, length, 1)))["params"]
  predict = jax.jit(make_predict(model, length),
                    compiler_options=compiler_options())
  tick = time.perf_counter()
  predict(params, series, starts).block_until_ready()
  first = time.perf_counter() - tick
  tick = time.perf_counter()
  predict(params, series, starts).block_until_ready()
  seconds = time.perf_counter() - tick
  return dict(units=units, layers=layers, windows=windows,
              seconds=round(seconds, 2), compile_and_first_call=round(first, 2),
              windows_per_s=round(windows / seconds),
              device=jax.devices()[0].device_kind,
              date=time.strftime("%Y-%m-%d"))


def main(argv):
  del argv
  print(json.dumps(time_forecast(FLAGS.units, FLAGS.layers, FLAGS.windows,
                                 FLAGS.length)))


if __name__ == "__main__":
  app.run(main)
