"""One LSTM layer over a time-major sequence, with its backward pass written
out (`jax.custom_vjp`).

Why by hand, and why this shape: on XLA:CPU the layer is bound by memory
traffic and layout copies more than by arithmetic. JAX's own derivative of
a layer with the input projection `x W_x` hoisted out of the time loop
needs that projection's weight gradient as a contraction over time and
batch, which XLA runs as transposes of [time, batch, 4 x units] arrays
before a matmul: at 128 units, 2 layers, 4 variants and batch 256 those
copies took about 40 % of a training step. Here each step does one matmul
of [x_t, h] against [W_x; W_h] forward, and one against its transpose
backward, and sums the weight gradients inside the reverse time loop;
nothing of size [time, batch, 4 x units] is transposed or stored beyond
the gate activations the backward pass needs.

Gate order is (input, forget, cell, output), as in Keras and PyTorch. All
four gate nonlinearities are one `tanh`, since
sigmoid(z) = tanh(z / 2) / 2 + 1/2: with s = 1/2 for the sigmoid gates and
1 for the cell gate, a gate's activation is tanh(s z) s + (1 - s).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def _gate_scales(units: int) -> tuple[np.ndarray, np.ndarray]:
  """(s, 1 - s) over the 4 x units gate columns."""
  s = np.full(4 * units, 0.5, np.float32)
  s[2 * units:3 * units] = 1.0
  return s, 1.0 - s


def _matmul(a, b, dtype):
  """a @ b with operands in `dtype` (float32 when None), result float32."""
  if dtype is None:
    return jnp.matmul(a, b)
  return jnp.matmul(a.astype(dtype), b.astype(dtype),
                    preferred_element_type=jnp.float32)


def _cell(u, c_prev, units: int):
  """Gate activations from u = tanh(s z); the new cell state; its tanh."""
  s, offset = _gate_scales(units)
  act = u * s + offset
  i, f, g, o = (act[..., k * units:(k + 1) * units] for k in range(4))
  c = f * c_prev + i * g
  return (i, f, g, o), c, jnp.tanh(c)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def lstm_sequence(w_x, w_h, b, x, matmul_dtype: Any = None):
  """x: [time, batch, features] -> hidden states [time, batch, units].

  w_x: [features, 4 units], w_h: [units, 4 units], b: [4 units]. Matmul
  operands are cast to `matmul_dtype` (e.g. bfloat16); sums, gates and
  the cell state stay float32. The state starts at zero.
  """
  return _forward(w_x, w_h, b, x, matmul_dtype)[0]


def _forward(w_x, w_h, b, x, dtype):
  units = w_h.shape[0]
  s, _ = _gate_scales(units)
  w = jnp.concatenate([w_x, w_h], axis=0)  # [x_t, h] @ w: one matmul a step

  def step(carry, x_t):
    h, c = carry
    u = jnp.tanh((_matmul(jnp.concatenate([x_t, h], axis=-1), w, dtype) + b)
                 * s)
    (_, _, _, o), c_new, tanh_c = _cell(u, c, units)
    h_new = o * tanh_c
    return (h_new, c_new), (h_new, u, h, c)

  zeros = jnp.zeros(x.shape[1:2] + (units,), jnp.float32)
  _, (hs, us, h_prev, c_prev) = jax.lax.scan(step, (zeros, zeros), x)
  return hs, (w_x, w_h, x, us, h_prev, c_prev)


def _backward(dtype, saved, d_hs):
  w_x, w_h, x, us, h_prev, c_prev = saved
  units, features = w_h.shape[0], w_x.shape[0]
  s, _ = _gate_scales(units)
  s2 = s * s  # d/dz of tanh(s z) s + (1 - s) is s^2 (1 - u^2)
  # Laid out [4 units, features + units] in memory, so that the step's
  # matmul is a plain one (a transposed operand runs at half the speed).
  w_t = jax.lax.optimization_barrier(jnp.concatenate([w_x, w_h], axis=0).T)

  def step(carry, saved_t):
    dh_next, dc_next, dw, db = carry
    dh_out, x_t, u, h_before, c_before = saved_t
    (i, f, g, o), _, tanh_c = _cell(u, c_before, units)
    dh = dh_out + dh_next
    dc = dc_next + dh * o * (1.0 - tanh_c * tanh_c)
    d_act = jnp.concatenate([dc * g, dc * c_before, dc * i, dh * tanh_c],
                            axis=-1)
    dz = d_act * s2 * (1.0 - u * u)
    xh = jnp.concatenate([x_t, h_before], axis=-1)
    dw = dw + _matmul(xh.T, dz, dtype)
    d_xh = _matmul(dz, w_t, dtype)
    carry = (d_xh[:, features:], dc * f, dw, db + dz.sum(axis=0))
    return carry, d_xh[:, :features]

  batch = x.shape[1]
  zeros = jnp.zeros((batch, units), jnp.float32)
  carry = (zeros, zeros, jnp.zeros((features + units, 4 * units), jnp.float32),
           jnp.zeros((4 * units,), jnp.float32))
  (_, _, dw, db), dx = jax.lax.scan(
      step, carry, (d_hs, x, us, h_prev, c_prev), reverse=True)
  return (dw[:features].astype(w_x.dtype), dw[features:].astype(w_h.dtype),
          db, dx.astype(x.dtype))


lstm_sequence.defvjp(_forward, _backward)
