"""Training K variants of one architecture at once.

The variants (dropout rates, learning rates, seeds) share array shapes, so
one compiled program trains them all: `jax.vmap` over their parameters,
optimizer states (each with its learning rate), dropout keys and rates, while
they all see the same batches. The series sits on the
device; windows are gathered inside the step from start indices.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from lstm_jax.checkpoint import LoopCheckpoints
from lstm_jax.config import LSTMConfig, Variant
from lstm_jax.data import WindowLoader, Windows
from lstm_jax.distributed import Placement, any_process, from_primary
from lstm_jax.model import LSTMForecaster

PREDICT_BATCH = 1024  # windows per forecast step; memory, not results, depends on it


def compiler_options() -> dict | None:
  """XLA options for the training, validation and forecast programs. On a
  CPU, LLVM optimisation level 1 (instead of the default) compiles them
  about a third faster and runs them as fast (benchmarks/RESULTS.md)."""
  if jax.default_backend() == "cpu":
    return {"xla_backend_optimization_level": 1}
  return None


class Interrupted(KeyboardInterrupt):
  """Training stopped on request at a segment end, after saving where it
  stood (when it had checkpoints): the same call resumes from there."""


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


def gather_windows(series, starts, length: int, horizon: int = 1):
  """series: [rows, features], starts: [B] -> x [B, length, features],
  y [B, horizon]: the first feature of the `horizon` rows after the window.
  """
  x = series[starts[:, None] + jnp.arange(length)]
  return x, series[starts[:, None] + length + jnp.arange(horizon), 0]


def epoch_batches(key, starts, batch_size: int):
  """Shuffled starts as [batches, batch_size], with weights masking padding."""
  count = starts.shape[0]
  order = starts[jax.random.permutation(key, count)]
  pad = -count % batch_size
  order = jnp.concatenate([order, jnp.full((pad,), order[0])])
  weights = jnp.concatenate([jnp.ones(count), jnp.zeros(pad)])
  return order.reshape(-1, batch_size), weights.reshape(-1, batch_size)


def make_train_steps(model: LSTMForecaster, tx, length: int,
                     placement: Placement | None = None):
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

  With a `placement` over several devices, the arguments must lie as it
  says (`train_shardings`); XLA splits the work and adds the collectives.
  """
  placement = placement or Placement()

  def loss_fn(params, x, y, weights, rate, key):
    pred = model.apply({"params": params}, x, rate, key)  # [B, horizon]
    squared = jnp.mean((pred - y) ** 2, axis=1)
    return jnp.sum(weights * squared) / jnp.sum(weights)

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
      x, y = gather_windows(series, order[step], length, model.horizon)
      step_weights = weights[step]
      if placement.split == "batch":  # each device takes its windows
        x, y, step_weights = jax.lax.with_sharding_constraint(
            (x, y, step_weights), placement.batch())
      keys = jax.vmap(
          lambda k: jax.random.fold_in(jax.random.fold_in(k, epoch), step)
      )(dropout_keys)
      moving = active & healthy
      states, loss, finite = v_train_step(states, moving, x, y, step_weights,
                                          rates, keys)
      losses = losses.at[step].set(loss * step_weights.sum())
      return states, losses, healthy & (finite | ~moving)

    return jax.lax.fori_loop(first, first + count, body,
                             (states, losses, healthy))

  if placement.mesh is None:
    return jax.jit(train_steps, donate_argnums=(0, 1),
                   compiler_options=compiler_options())
  ins, outs = train_shardings(placement)
  return jax.jit(train_steps, donate_argnums=(0, 1), in_shardings=ins,
                 out_shardings=outs, compiler_options=compiler_options())


def train_shardings(placement: Placement) -> tuple[tuple, tuple]:
  """How the arguments and results of `make_train_steps`' segment lie."""
  variant, steps_k = placement.per_variant(), placement.per_variant(axis=1)
  whole, columns = placement.replicated(), placement.columns()
  ins = (variant, steps_k, variant, whole, columns, columns, variant,
         variant, variant, whole, whole, whole)
  return ins, (variant, steps_k, variant)


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
      # Processes of one job time alike but not equally: process 0 decides.
      self.size = from_primary(max(1, round(wanted / per_step)))


def run_segments(train_steps, states, losses, healthy, series, order, weights,
                 rates, dropout_keys, active, stream: int, step: int,
                 batches: int, sizer: SegmentSizer, on_segment=None):
  """Steps `step` .. `batches` - 1 of one set of batches, in segments.

  `on_segment(step, states, losses, healthy)` is called after every segment
  that ends before the last batch (where a checkpoint may be taken).
  Returns (states, losses, healthy).
  """
  while step < batches:
    count = sizer.next(batches - step)
    tick = time.perf_counter()
    states, losses, healthy = train_steps(
        states, losses, healthy, series, order, weights, rates, dropout_keys,
        active, np.int32(stream), np.int32(step), np.int32(count))
    losses.block_until_ready()  # the segment's sync point
    sizer.observe(count, time.perf_counter() - tick)
    step += count
    if on_segment and step < batches:
      on_segment(step, states, losses, healthy)
  return states, losses, healthy


def run_epoch(train_steps, states, series, starts, rates, dropout_keys,
              shuffle_key, epoch: int, batch_size: int, sizer: SegmentSizer,
              active=None):
  """One epoch over `starts` of a series on the device, shuffled on the
  device: the whole-array case, for benchmarks and tests. Returns (states,
  mean train loss [K], healthy [K])."""
  order, weights = shuffle_batches(
      jax.random.fold_in(shuffle_key, epoch), starts, batch_size)
  count_k = rates.shape[0]
  active = jnp.ones(count_k, bool) if active is None else jnp.asarray(active)
  losses, healthy = jnp.zeros((order.shape[0], count_k)), jnp.ones(count_k,
                                                                   bool)
  states, losses, healthy = run_segments(
      train_steps, states, losses, healthy, series, order, weights, rates,
      dropout_keys, active, epoch, 0, order.shape[0], sizer)
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


def make_eval_loss(model: LSTMForecaster, length: int,
                   placement: Placement | None = None):
  """Jitted (stacked params, series, starts) -> mean squared error [K]
  (params lying as `placement` says, the rest whole on every device)."""
  predict = make_predict(model, length)

  def eval_loss(params, series, starts):
    preds = jax.vmap(predict, in_axes=(0, None, None))(params, series, starts)
    _, y = gather_windows(series, starts, length, model.horizon)
    return jnp.mean((preds - y) ** 2, axis=(1, 2))

  placement = placement or Placement()
  if placement.mesh is None:
    return jax.jit(eval_loss, compiler_options=compiler_options())
  whole = placement.replicated()
  return jax.jit(eval_loss, in_shardings=(placement.per_variant(), whole,
                                          whole), out_shardings=whole,
                 compiler_options=compiler_options())


def make_optimizer(config: LSTMConfig):
  """Adam (AdamW with --weight_decay, after --clip_norm clipping) with its
  learning rate in its state, where each variant carries its own."""

  def build(learning_rate):
    adam = (optax.adamw(learning_rate, weight_decay=config.weight_decay)
            if config.weight_decay else optax.adam(learning_rate))
    if config.clip_norm:
      return optax.chain(optax.clip_by_global_norm(config.clip_norm), adam)
    return adam

  return optax.inject_hyperparams(build)(learning_rate=config.learning_rates[0])


def learning_rates(states: TrainState) -> np.ndarray:
  """Each variant's current learning rate."""
  return np.asarray(states.opt_state.hyperparams["learning_rate"])


def with_learning_rates(states: TrainState, rates) -> TrainState:
  """The states with these learning rates [K], laid out like the old."""
  opt_state = states.opt_state
  old = opt_state.hyperparams["learning_rate"]
  hyperparams = {**opt_state.hyperparams, "learning_rate": jax.device_put(
      np.asarray(rates, np.float32), old.sharding)}
  return states.replace(opt_state=opt_state._replace(hyperparams=hyperparams))


@flax.struct.dataclass
class LoopState:
  """Everything a training loop carries from step to step, per variant:
  what a checkpoint must hold to continue exactly."""

  states: TrainState
  best_params: Any
  best_val: np.ndarray  # inf until a first finite validation loss
  best_epoch: np.ndarray  # 0: none yet
  best_train: np.ndarray
  active: np.ndarray  # still training
  epochs_run: np.ndarray
  diverged_epoch: np.ndarray  # 0 where it did not diverge
  plateau_wait: np.ndarray  # epochs since the last improvement or reduction
  # The epoch in progress (a checkpoint may fall inside one):
  epoch_loss: Any  # [K] summed loss of the chunks finished this epoch
  losses: Any  # [batches, K] summed loss of each step of the current chunk
  healthy: Any  # [K] no non-finite loss or gradient this epoch


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
  final_learning_rate: np.ndarray
  history: list[dict]
  seconds: float  # including the time of runs it resumed
  compile_seconds: float


@jax.jit
def _keep_best(best, params, improved):
  def pick(b, p):
    mask = improved.reshape((-1,) + (1,) * (p.ndim - 1))
    return jnp.where(mask, p, b)

  return jax.tree.map(pick, best, params)


def _variant_keys(seeds, stream: int):
  return jnp.stack([jax.random.fold_in(jax.random.fold_in(
      jax.random.key(int(s)), stream), 0) for s in seeds])


def train_variants(
    model: LSTMForecaster,
    loader: WindowLoader,
    val: Windows,
    variants: Sequence[Variant],
    config: LSTMConfig,
    *,
    checkpoints: LoopCheckpoints | None = None,
    on_epoch: Callable[[list[dict]], None] | None = None,
    on_progress: Callable[[int, int, float], None] | None = None,
    stop: Callable[[], bool] | None = None,
    placement: Placement | None = None,
) -> TrainResult:
  """Trains the variants together; keeps each one's best parameters.

  Variants differ in dropout, learning rate and seed (initialisation and
  dropout keys); all see the same batches, from `loader`. Validation on
  `val` runs after every epoch (one host sync per epoch, deliberate). A
  variant stops (its state frozen) after `config.patience` epochs without
  improvement, or as `diverged` once its loss or gradients turn non-finite;
  its learning rate drops by `config.lr_factor` after `config.lr_patience`
  epochs without one. Training ends when no variant is left. Each dispatch
  runs `config.segment_steps` steps (0: about a second's worth).

  With `checkpoints`, the loop resumes from the newest one there and saves
  where they say, at segment ends; a resumed run computes exactly what an
  uninterrupted one does, since keys and batches depend only on seeds,
  epoch, chunk and step. `on_epoch(history)` follows the epochs (the
  history includes those of resumed runs), `on_progress(epoch, steps done
  in it, mean training loss of the first variant so far in it)` the
  segments (epochs counted from 0). When `stop()` turns true, the loop
  saves a checkpoint at the next segment end and raises Interrupted.
  `placement` lays the arrays over several devices (default: one).
  """
  count = len(variants)
  placement = placement or Placement()
  per_variant, whole = placement.per_variant(), placement.replicated()
  tx = make_optimizer(config)
  rates = placement.put(jnp.asarray([v.dropout for v in variants],
                                    jnp.float32), per_variant)
  seeds = [v.seed for v in variants]
  dropout_keys = placement.put(_variant_keys(seeds, 1), per_variant)
  length = config.sequence_length
  states = create_train_states(model, tx, _variant_keys(seeds, 0),
                               loader.features, length)
  states = placement.put(with_learning_rates(
      states, [v.learning_rate for v in variants]), per_variant)
  val_rows, val_starts = placement.put((val.rows, val.starts), whole)
  shapes, batches = loader.shapes(), loader.max_batches

  def fresh(shape, value=0.0):  # a new [K] or [batches, K] array, laid out
    return placement.put(jnp.full(shape, value), placement.per_variant(
        axis=len(shape) - 1))

  started = time.perf_counter()
  everyone = fresh((count,), True)
  train_steps = make_train_steps(model, tx, length, placement).lower(
      states, fresh((batches, count)), everyone, shapes.rows, shapes.order,
      shapes.weights, rates, dropout_keys, everyone, np.int32(0),
      np.int32(0), np.int32(1)).compile()
  eval_loss = make_eval_loss(model, length, placement).lower(
      states.params, val_rows, val_starts).compile()
  compile_seconds = time.perf_counter() - started

  zeros = np.zeros(count, np.int64)
  loop = LoopState(
      states, jax.tree.map(jnp.copy, states.params), np.full(count, np.inf),
      zeros, np.full(count, np.nan), np.ones(count, bool), zeros, zeros,
      zeros, fresh((count,)), fresh((batches, count)), everyone)
  # Where the loop stands: epoch, position in the epoch's chunk order, step
  # in that chunk, and steps done in all (the checkpoints' step number).
  at = dict(epoch=0, chunk=0, step=0, done=0)
  # What decides the batch order besides `at`, checked when resuming.
  order_key = dict(seed=int(loader.seed), chunks=int(loader.chunks),
                   batch_size=int(loader.batch_size))
  history, earlier_seconds = [], 0.0
  if checkpoints is not None:
    def same_order(record):
      if record.get("order", order_key) != order_key:
        raise ValueError(
            f"{checkpoints.directory}: the checkpoint was taken with batch "
            f"order {record['order']}, this run has {order_key}; resume with "
            "the same seed and --chunk_windows, or start in a new --workdir")

    restored = checkpoints.restore(loop, check=same_order)
    if restored is not None:
      loop, record = restored
      at = {k: record[k] for k in at}
      history, earlier_seconds = record["history"], record["seconds"]
  sizer = SegmentSizer(config.segment_steps)

  def save(loop, at):
    checkpoints.save(at["done"], loop, dict(
        **at, order=order_key, history=history,
        seconds=earlier_seconds + time.perf_counter() - started))

  def save_if_due(loop, at, epoch_end: bool = False):
    """Saves when the cadence says so, or on a stop request (then raises
    Interrupted)."""
    stopping, due = any_process(
        stop is not None and stop(),
        checkpoints is not None and checkpoints.due(at["done"],
                                                    epoch_end=epoch_end))
    if checkpoints is not None and (stopping or due):
      save(loop, at)
    if stopping:
      raise Interrupted

  def segment_end(step, states, losses, healthy, *, loop, at, batches_before):
    done = at["done"] + step - at["step"]
    if on_progress:
      seen = (batches_before + step) * loader.batch_size
      loss = float((loop.epoch_loss[0] + losses[:, 0].sum()) / seen)
      on_progress(at["epoch"], batches_before + step, loss)
    save_if_due(loop.replace(states=states, losses=losses, healthy=healthy),
                {**at, "step": step, "done": done})

  while at["epoch"] < config.epochs and loop.active.any():
    tick, epoch = time.perf_counter(), at["epoch"]
    order = loader.chunk_order(epoch)
    while at["chunk"] < len(order):
      position = at["chunk"]
      chunk = loader.host(epoch, order[position])
      if at["step"] == 0:
        loop = loop.replace(losses=fresh((batches, count)))
      batches_before = sum(loader.batches_of(c) for c in order[:position])
      states, losses, healthy = run_segments(
          train_steps, loop.states, loop.losses, loop.healthy,
          placement.put(chunk.rows, whole), placement.put_columns(chunk.order),
          placement.put_columns(chunk.weights), rates, dropout_keys,
          placement.put(loop.active, per_variant),
          epoch * loader.chunks + position,
          at["step"], chunk.batches, sizer,
          functools.partial(segment_end, loop=loop, at=dict(at),
                            batches_before=batches_before))
      at["done"] += chunk.batches - at["step"]
      at["chunk"], at["step"] = position + 1, 0
      loop = loop.replace(states=states, losses=losses, healthy=healthy,
                          epoch_loss=loop.epoch_loss + losses.sum(axis=0))
      if on_progress:
        seen = min((batches_before + chunk.batches) * loader.batch_size,
                   loader.windows)
        on_progress(epoch, batches_before + chunk.batches,
                    float(loop.epoch_loss[0]) / seen)
      if at["chunk"] < len(order):
        save_if_due(loop, at)
    train_loss = np.asarray(loop.epoch_loss) / loader.windows
    val_loss = np.asarray(eval_loss(loop.states.params, val_rows, val_starts))
    # A finite training loss with a validation loss that overflows diverged too.
    healthy = np.asarray(loop.healthy) & np.isfinite(val_loss)
    trained = loop.active & healthy
    at = dict(epoch=epoch + 1, chunk=0, step=0, done=at["done"])
    loop = _end_of_epoch(loop, loop.states, train_loss, val_loss, healthy,
                         epoch + 1, config)
    # The next epoch starts afresh (the old buffers may have been donated).
    loop = loop.replace(epoch_loss=fresh((count,)),
                        losses=fresh((batches, count)), healthy=everyone)
    history.append(dict(
        epoch=epoch + 1, seconds=time.perf_counter() - tick,
        train_loss=_where_trained(train_loss, trained),
        val_loss=_where_trained(val_loss, trained),
        learning_rate=learning_rates(loop.states).tolist()))
    if on_epoch:
      on_epoch(history)
    save_if_due(loop, at, epoch_end=True)

  status = ["diverged" if d else "early_stopped" if n < config.epochs else
            "completed"
            for d, n in zip(loop.diverged_epoch, loop.epochs_run, strict=True)]
  return TrainResult(
      loop.best_params, loop.best_epoch, loop.best_val, loop.best_train,
      loop.epochs_run, status, loop.diverged_epoch,
      learning_rates(loop.states), history,
      earlier_seconds + time.perf_counter() - started, compile_seconds)


def _end_of_epoch(loop: LoopState, states, train_loss, val_loss, healthy,
                  epoch: int, config: LSTMConfig) -> LoopState:
  """The bookkeeping after epoch `epoch` (1-based): best parameters, early
  stopping, divergence and plateaus, per variant, by masking."""
  trained = loop.active & healthy
  improved = trained & (val_loss < loop.best_val - config.min_delta)
  best_params = _keep_best(loop.best_params, states.params,
                           jnp.asarray(improved))
  diverged_epoch = np.where(loop.active & ~healthy, epoch, loop.diverged_epoch)
  best_epoch = np.where(improved, epoch, loop.best_epoch)
  wait = np.where(improved, 0, loop.plateau_wait + trained)
  if config.lr_patience:
    reduce = trained & (wait >= config.lr_patience)
    rates = learning_rates(states)
    lowered = np.maximum(rates * np.float32(config.lr_factor),
                         np.float32(config.min_learning_rate))
    states = with_learning_rates(states, np.where(reduce, lowered, rates))
    wait = np.where(reduce, 0, wait)
  active = trained & (epoch - best_epoch < config.patience)
  return loop.replace(
      states=states, best_params=best_params,
      best_val=np.where(improved, val_loss, loop.best_val),
      best_epoch=best_epoch,
      best_train=np.where(improved, train_loss, loop.best_train),
      active=active, epochs_run=loop.epochs_run + loop.active,
      diverged_epoch=diverged_epoch, plateau_wait=wait)


def _where_trained(values, trained) -> list[float | None]:
  """Per-variant values for the record; None for a variant that had stopped."""
  return [float(v) if t else None for v, t in zip(values, trained, strict=True)]


def unstack(tree, index: int):
  """One variant's slice of a stacked pytree."""
  return jax.tree.map(lambda leaf: leaf[index], tree)
