"""The LSTM forecaster: stacked LSTM layers and a dense head.

Gate order in the fused kernels is (input, forget, cell, output), as in
Keras and PyTorch.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from lstm_jax.recurrence import lstm_sequence


def _unit_forget_bias(key, shape, dtype=jnp.float32):
  # A forget gate that starts open lets gradients through long windows.
  units = shape[0] // 4
  return jnp.zeros(shape, dtype).at[units:2 * units].set(1.0)


class LSTMLayer(nn.Module):
  """One LSTM layer over a whole sequence (`recurrence.lstm_sequence`,
  which says how it is computed)."""

  units: int
  matmul_dtype: Any = None  # e.g. jnp.bfloat16; the state stays float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """x: [time, batch, features] -> hidden states [time, batch, units]."""
    features = x.shape[-1]
    w_x = self.param("w_x", nn.initializers.glorot_uniform(),
                     (features, 4 * self.units))
    w_h = self.param("w_h", nn.initializers.orthogonal(),
                     (self.units, 4 * self.units))
    b = self.param("b", _unit_forget_bias, (4 * self.units,))
    return lstm_sequence(w_x, w_h, b, x, self.matmul_dtype)


def dropout(x: jax.Array, rate: jax.Array, key: jax.Array) -> jax.Array:
  """Inverted dropout whose rate may be traced (one program, any rate).

  flax.linen.Dropout branches on its rate in Python, so a rate that is a
  vmapped array needs this. A rate of 0 keeps every unit and scales by 1.
  """
  keep = 1.0 - rate
  mask = jax.random.bernoulli(key, keep, x.shape)
  return jnp.where(mask, x / keep, 0.0)


class LSTMForecaster(nn.Module):
  """Stacked LSTM layers, dropout between them and before a dense head."""

  units: int
  layers: int
  horizon: int = 1
  matmul_dtype: Any = None

  @nn.compact
  def __call__(self, x, dropout_rate=0.0, dropout_key=None):
    """x: [batch, time, features] -> forecasts [batch, horizon].

    Dropout acts only when `dropout_key` is given (training mode).
    """
    h = jnp.swapaxes(x, 0, 1)  # time-major inside: the scan runs over axis 0
    for layer in range(self.layers):
      h = LSTMLayer(self.units, self.matmul_dtype, name=f"lstm_{layer}")(h)
      if layer == self.layers - 1:
        h = h[-1]
      if dropout_key is not None:
        h = dropout(h, dropout_rate, jax.random.fold_in(dropout_key, layer))
    return nn.Dense(self.horizon, name="head")(h)


def parameter_count(params) -> int:
  """Exact number of scalars in a parameter pytree."""
  return int(sum(np.prod(p.shape) for p in jax.tree.leaves(params)))


def train_flops_per_window(units: int, layers: int, length: int,
                           features: int = 1) -> float:
  """FLOPs of one training window, forward plus backward: about
  3 x T x 8 x H x (I + H) per layer (the head is negligible)."""
  inputs = [features] + [units] * (layers - 1)
  return float(sum(3 * length * 8 * units * (i + units) for i in inputs))
