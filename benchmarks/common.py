"""Timing helpers shared by the throughput benchmarks."""

from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch

from benchmarks import torch_reference as ref
from lstm_jax.model import LSTMForecaster, train_flops_per_window
from lstm_jax.train import create_train_states, make_train_steps, shuffle_batches

DROPOUT = 0.1


def flops_per_sample(units: int, layers: int, length: int) -> float:
  return train_flops_per_window(units, layers, length)


def _median_seconds(run, runs: int) -> float:
  run()  # warm-up
  times = []
  for _ in range(runs):
    tick = time.perf_counter()
    run()
    times.append(time.perf_counter() - tick)
  return statistics.median(times)


def ours(series, units, layers, variants, steps, batch, length, runs,
         matmul_dtype=None):
  """(median seconds of `steps` vmapped steps, compile seconds)."""
  model = LSTMForecaster(units, layers, matmul_dtype=matmul_dtype)
  tx = optax.adam(1e-3)
  keys = jnp.stack([jax.random.key(k) for k in range(variants)])
  state = {"s": create_train_states(model, tx, keys, 1, length)}
  rates = jnp.full((variants,), DROPOUT)
  order, weights = shuffle_batches(jax.random.key(0),
                                   jnp.arange(steps * batch), batch)
  everyone = jnp.ones(variants, bool)
  tick = time.perf_counter()
  train_steps = make_train_steps(model, tx, length).lower(
      state["s"], jnp.zeros((steps, variants)), everyone, series, order,
      weights, rates, keys, everyone, np.int32(0), np.int32(0),
      np.int32(steps)).compile()
  compile_seconds = time.perf_counter() - tick

  def run():
    state["s"], out, _ = train_steps(
        state["s"], jnp.zeros((steps, variants)), everyone, series, order,
        weights, rates, keys, everyone, np.int32(0), np.int32(0),
        np.int32(steps))
    out.block_until_ready()

  return _median_seconds(run, runs), compile_seconds


def pytorch(series, units, layers, variants, steps, batch, length, runs,
            device="cpu"):
  """Median seconds of `steps` steps of each of `variants` models in turn."""
  data = torch.from_numpy(np.asarray(series)).to(device)
  models = [ref.TorchForecaster(1, units, layers, DROPOUT).to(device)
            for _ in range(variants)]
  optimizers = [torch.optim.Adam(m.parameters(), 1e-3) for m in models]
  starts = np.arange(steps * batch)
  rng = np.random.default_rng(0)

  def run():
    for model, optimizer in zip(models, optimizers, strict=True):
      ref.train_epoch(model, optimizer, data, starts, length, batch, rng)
    if device != "cpu":
      torch.cuda.synchronize()

  return _median_seconds(run, runs)


