"""Training K variants of one architecture at once.

The variants (dropout rates) share array shapes, so one compiled program
trains them all: `jax.vmap` over their parameters, optimizer states, dropout
keys and rates, while they all see the same batches. The series sits on the
device; windows are gathered inside the step from start indices.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from lstm_jax.model import LSTMForecaster

PREDICT_BATCH = 1024  # windows per forecast step; memory, not results, depends on it


@flax.struct.dataclass
class TrainState:
  params: Any
  opt_state: Any


def create_train_states(model, tx, init_keys, features: int, length: int):
  """init_keys: [K, key] -> a TrainState whose leaves have a leading K axis."""

  def init(key):
    params = model.init(key, jnp.zeros((1, length, features)))["params"]
    return TrainState(params, tx.init(params))

  return jax.vmap(init)(init_keys)


def gather_windows(series, starts, length: int):
  """series: [rows, features], starts: [B] -> x [B, length, features], y [B].

  The target is the first feature of the row after the window.
  """
  x = series[starts[:, None] + jnp.arange(length)]
  return x, series[starts + length, 0]


def epoch_batches(key, starts, batch_size: int):
  """Shuffled starts as [batches, batch_size], with weights masking padding."""
  count = starts.shape[0]
  order = starts[jax.random.permutation(key, count)]
  pad = -count % batch_size
  order = jnp.concatenate([order, jnp.full((pad,), order[0])])
  weights = jnp.concatenate([jnp.ones(count), jnp.zeros(pad)])
  return order.reshape(-1, batch_size), weights.reshape(-1, batch_size)


def make_train_steps(model: LSTMForecaster, tx, length: int):
  """The jitted segment: (states, losses, healthy, series, order, weights,
  rates, dropout_keys, active, epoch, first, count) -> (states, losses,
  healthy).

  Runs steps first .. first + count - 1 of an epoch whose batches are the
  rows of `order` ([batches, batch_size] start indices, `weights` masking
  padding), writing each step's summed loss into row `step` of `losses`
  ([batches, K]). The step count is traced, so one program serves every
  segment length; a step's dropout key depends on (epoch, step) alone, so
  where the segments are cut never changes the result.

  Per-variant control is masking: a variant not `active` ([K] bool) keeps
  its state; one whose loss or gradients turn non-finite keeps its last
  finite state and is marked not `healthy` from then on. The others compute
  exactly what they would without it.
  """

  def loss_fn(params, x, y, weights, rate, key):
    pred = model.apply({"params": params}, x, rate, key)[:, 0]
    return jnp.sum(weights * (pred - y) ** 2) / jnp.sum(weights)

  def train_step(state, moving, x, y, weights, rate, key):
    loss, grads = jax.value_and_grad(loss_fn)(
        state.params, x, y, weights, rate, key)
    finite = jnp.isfinite(loss)
    for grad in jax.tree.leaves(grads):
      finite &= jnp.isfinite(grad).all()
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    keep = moving & finite
    state = jax.tree.map(lambda new, old: jnp.where(keep, new, old),
                         TrainState(params, opt_state), state)
    return state, loss, finite

  v_train_step = jax.vmap(train_step, in_axes=(0, 0, None, None, None, 0, 0))

  def train_steps(states, losses, healthy, series, order, weights, rates,
                  dropout_keys, active, epoch, first, count):
    def body(step, carry):
      states, losses, healthy = carry
      x, y = gather_windows(series, order[step], length)
      keys = jax.vmap(
          lambda k: jax.random.fold_in(jax.random.fold_in(k, epoch), step)
      )(dropout_keys)
      moving = active & healthy
      states, loss, finite = v_train_step(states, moving, x, y, weights[step],
                                          rates, keys)
      losses = losses.at[step].set(loss * weights[step].sum())
      return states, losses, healthy & (finite | ~moving)

    return jax.lax.fori_loop(first, first + count, body,
                             (states, losses, healthy))

  return jax.jit(train_steps, donate_argnums=(0, 1))


shuffle_batches = jax.jit(epoch_batches, static_argnums=2)


class SegmentSizer:
  """How many steps one dispatch runs.

  A fixed `steps`; or (steps=0) sized from the first two segments, of one
  and two steps, which give the time of a step and the fixed cost of a
  dispatch: a segment then lasts about `seconds`, and longer where that
  keeps the dispatch cost under `max_overhead` of the segment. Either way
  the results are the same; only how often control returns to Python
  changes.
  """

  def __init__(self, steps: int = 0, seconds: float = 1.0,
               max_overhead: float = 0.05):
    self.fixed, self.seconds, self.max_overhead = steps, seconds, max_overhead
    self.timings: list[float] = []
    self.size: int | None = None

  def next(self, remaining: int) -> int:
    if self.fixed:
      return min(self.fixed, remaining)
    if self.size is None:
      return min(len(self.timings) + 1, remaining)  # 1, then 2 steps
    return min(self.size, remaining)

  def observe(self, steps: int, seconds: float) -> None:
    if self.fixed or self.size is not None:
      return
    if steps != len(self.timings) + 1:  # an epoch's end cut a probe short
      return
    self.timings.append(seconds)
    if len(self.timings) == 2:
      one, two = self.timings
      per_step = max(two - one, two / 4)  # robust to timing noise
      overhead = max(one - per_step, 0.0)
      wanted = max(self.seconds, overhead / self.max_overhead)
      self.size = max(1, round(wanted / per_step))


def run_epoch(train_steps, states, series, starts, rates, dropout_keys,
              shuffle_key, epoch: int, batch_size: int, sizer: SegmentSizer,
              active=None):
  """One epoch in segments of the variants that are `active` (default all).

  Returns (states, mean train loss [K], healthy [K]: no non-finite loss or
  gradient met this epoch).
  """
  order, weights = shuffle_batches(
      jax.random.fold_in(shuffle_key, epoch), starts, batch_size)
  count_k = rates.shape[0]
  active = jnp.ones(count_k, bool) if active is None else jnp.asarray(active)
  batches, step = order.shape[0], 0
  losses, healthy = jnp.zeros((batches, count_k)), jnp.ones(count_k, bool)
  while step < batches:
    count = sizer.next(batches - step)
    tick = time.perf_counter()
    states, losses, healthy = train_steps(
        states, losses, healthy, series, order, weights, rates, dropout_keys,
        active, np.int32(epoch), np.int32(step), np.int32(count))
    losses.block_until_ready()  # the segment's sync point
    sizer.observe(count, time.perf_counter() - tick)
    step += count
  return states, losses.sum(axis=0) / starts.shape[0], healthy


def make_predict(model: LSTMForecaster, length: int):
  """predict(params, series, starts [n]) -> forecasts [n, horizon], in
  batches of PREDICT_BATCH windows (not jitted: callers jit or vmap it)."""

  def predict(params, series, starts):
    count = starts.shape[0]
    pad = -count % PREDICT_BATCH
    padded = jnp.concatenate([starts, jnp.full((pad,), starts[0])])

    def body(_, batch_starts):
      x, _ = gather_windows(series, batch_starts, length)
      return None, model.apply({"params": params}, x)

    _, out = jax.lax.scan(body, None, padded.reshape(-1, PREDICT_BATCH))
    return out.reshape(-1, out.shape[-1])[:count]

  return predict


def make_eval_loss(model: LSTMForecaster, length: int):
  """Jitted (stacked params, series, starts) -> mean squared error [K]."""
  predict = make_predict(model, length)

  def eval_loss(params, series, starts):
    preds = jax.vmap(predict, in_axes=(0, None, None))(params, series, starts)
    y = series[starts + length, 0]
    return jnp.mean((preds[..., 0] - y) ** 2, axis=1)

  return jax.jit(eval_loss)


@dataclasses.dataclass
class TrainResult:
  """Per-variant outcome; arrays have one entry per variant."""

  best_params: Any
  best_epoch: np.ndarray
  best_val_loss: np.ndarray
  train_loss_at_best: np.ndarray
  epochs_run: np.ndarray
  status: list[str]  # completed, early_stopped or diverged
  diverged_epoch: np.ndarray  # 0 where it did not diverge
  history: list[dict]
  seconds: float
  compile_seconds: float


@jax.jit
def _keep_best(best, params, improved):
  def pick(b, p):
    mask = improved.reshape((-1,) + (1,) * (p.ndim - 1))
    return jnp.where(mask, p, b)

  return jax.tree.map(pick, best, params)


class _BestSoFar:
  """Each variant's best epoch by validation loss, and its parameters."""

  def __init__(self, params, count: int):
    # A copy: an epoch donates (and so deletes) the state's own buffers.
    self.params = jax.tree.map(jnp.copy, params)
    self.val = np.full(count, np.inf)
    self.epoch = np.zeros(count, int)
    self.train = np.full(count, np.nan)

  def update(self, epoch: int, params, train_loss, val_loss, mask) -> None:
    improved = (val_loss < self.val) & mask
    self.params = _keep_best(self.params, params, jnp.asarray(improved))
    self.val = np.where(improved, val_loss, self.val)
    self.epoch = np.where(improved, epoch, self.epoch)
    self.train = np.where(improved, train_loss, self.train)


def train_variants(
    model: LSTMForecaster,
    series: jax.Array,
    train_starts: np.ndarray,
    val_starts: np.ndarray,
    rates: np.ndarray,
    *,
    seed: int,
    learning_rate: float,
    batch_size: int,
    length: int,
    epochs: int,
    patience: int | None = None,
    segment_steps: int = 0,
    on_epoch: Callable[[dict], None] | None = None,
) -> TrainResult:
  """Trains len(rates) variants together; keeps each one's best parameters.

  Validation runs after every epoch (one host sync per epoch, deliberate).
  With `patience`, a variant stops (its state frozen) once it has not
  improved for that many epochs; a variant whose loss or gradients turn
  non-finite stops as `diverged`. Training ends when none is left. Each
  dispatch runs `segment_steps` steps (0: about a second's worth). All
  variants share the seed: same initial parameters and batches,
  so they differ only in what the rates make them differ in.
  """
  count = len(rates)
  tx = optax.adam(learning_rate)
  root = jax.random.key(seed)
  init_keys = jnp.stack([jax.random.fold_in(root, 0)] * count)
  dropout_keys = jnp.stack(
      [jax.random.fold_in(jax.random.fold_in(root, 1), 0)] * count)
  shuffle_key = jax.random.fold_in(root, 2)
  states = create_train_states(model, tx, init_keys, series.shape[1], length)
  train_starts, val_starts = jnp.asarray(train_starts), jnp.asarray(val_starts)
  rates = jnp.asarray(rates, jnp.float32)

  started = time.perf_counter()
  # Shapes only: compiling needs no real epoch order.
  order, weights = jax.eval_shape(
      lambda s: epoch_batches(shuffle_key, s, batch_size), train_starts)
  everyone = jnp.ones(count, bool)
  train_steps = make_train_steps(model, tx, length).lower(
      states, jnp.zeros((order.shape[0], count)), everyone, series, order,
      weights, rates, dropout_keys, everyone, np.int32(0), np.int32(0),
      np.int32(1)).compile()
  eval_loss = make_eval_loss(model, length).lower(
      states.params, series, val_starts).compile()
  compile_seconds = time.perf_counter() - started

  best, history, sizer = _BestSoFar(states.params, count), [], SegmentSizer(
      segment_steps)
  active, epochs_run = np.ones(count, bool), np.zeros(count, int)
  diverged_epoch = np.zeros(count, int)
  for epoch in range(1, epochs + 1):
    tick = time.perf_counter()
    states, train_loss, healthy = run_epoch(
        train_steps, states, series, train_starts, rates, dropout_keys,
        shuffle_key, epoch - 1, batch_size, sizer, active)
    val_loss = np.asarray(eval_loss(states.params, series, val_starts))
    train_loss, healthy = np.asarray(train_loss), np.asarray(healthy)
    trained = active & healthy
    epochs_run += active
    diverged_epoch[active & ~healthy] = epoch
    best.update(epoch, states.params, train_loss, val_loss, trained)
    history.append(dict(epoch=epoch, seconds=time.perf_counter() - tick,
                        train_loss=_where_trained(train_loss, trained),
                        val_loss=_where_trained(val_loss, trained)))
    if on_epoch:
      on_epoch(history[-1])
    active &= healthy
    if patience:
      active &= epoch - best.epoch < patience
    if not active.any():
      break
  status = ["diverged" if d else "early_stopped" if n < epochs else
            "completed" for d, n in zip(diverged_epoch, epochs_run, strict=True)]
  return TrainResult(best.params, best.epoch, best.val, best.train,
                     epochs_run, status, diverged_epoch, history,
                     time.perf_counter() - started, compile_seconds)


def _where_trained(values, trained) -> list[float | None]:
  """Per-variant values for the record; None for a variant that had stopped."""
  return [float(v) if t else None for v, t in zip(values, trained, strict=True)]


def unstack(tree, index: int):
  """One variant's slice of a stacked pytree."""
  return jax.tree.map(lambda leaf: leaf[index], tree)
