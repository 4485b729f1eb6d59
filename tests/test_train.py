"""Vmapped training equals training each variant alone; batching is exact."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lstm_jax.checkpoint import LoopCheckpoints
from lstm_jax.config import Variant, make_config
from lstm_jax.data import WindowLoader, Windows
from lstm_jax.model import LSTMForecaster
from lstm_jax.train import (
  Interrupted,
  SegmentSizer,
  create_train_states,
  epoch_batches,
  gather_windows,
  make_eval_loss,
  make_optimizer,
  make_train_steps,
  run_epoch,
  shuffle_batches,
  train_variants,
  unstack,
)

LENGTH, BATCH = 8, 8


def _config(**overrides):
  return make_config(sequence_length=LENGTH, batch_size=BATCH, **overrides)


def _variants(dropouts, learning_rate=1e-2, seed=0):
  return [Variant(d, learning_rate, seed) for d in dropouts]


def _setup(count):
  rng = np.random.default_rng(0)
  series = jnp.asarray(rng.normal(size=(200, 1)), jnp.float32)
  starts = jnp.arange(160, dtype=jnp.int32)  # 20 steps of 8 windows
  model = LSTMForecaster(6, 2)
  tx = optax.adam(1e-2)
  keys = jnp.stack([jax.random.fold_in(jax.random.key(5), k)
                    for k in range(count)])
  return series, starts, model, tx, keys


def _twenty_steps(model, tx, series, starts, keys, rates, dropout_keys):
  steps = make_train_steps(model, tx, LENGTH)
  order, weights = shuffle_batches(jax.random.key(7), starts, BATCH)
  states = create_train_states(model, tx, keys, 1, LENGTH)
  losses = jnp.zeros((order.shape[0], rates.shape[0]))
  everyone = jnp.ones(rates.shape[0], bool)
  states, losses, _ = steps(states, losses, everyone, series, order, weights,
                            rates, dropout_keys, everyone, np.int32(0),
                            np.int32(0), np.int32(order.shape[0]))
  return states, losses.sum(axis=0)


def test_vmapped_variants_equal_each_variant_alone(highest_precision):
  rates = jnp.array([0.0, 0.2, 0.5])
  series, starts, model, tx, keys = _setup(3)
  dropout_keys = jax.vmap(lambda k: jax.random.fold_in(k, 99))(keys)
  together, loss_together = _twenty_steps(model, tx, series, starts, keys,
                                          rates, dropout_keys)
  for k in range(3):
    alone, loss_alone = _twenty_steps(model, tx, series, starts,
                                      keys[k:k + 1], rates[k:k + 1],
                                      dropout_keys[k:k + 1])
    np.testing.assert_allclose(loss_alone[0], loss_together[k], rtol=1e-4)
    pairs = zip(jax.tree.leaves(unstack(together.params, k)),
                jax.tree.leaves(unstack(alone.params, 0)), strict=True)
    for a, b in pairs:
      rel = np.linalg.norm(a - b) / np.linalg.norm(b)
      assert rel < 1e-4, rel
  # The variants did train differently: dropout is not a no-op.
  assert not np.allclose(loss_together[0], loss_together[2])


def test_segment_length_never_changes_the_result():
  series, starts, model, tx, keys = _setup(2)
  rates = jnp.array([0.0, 0.3])
  steps = make_train_steps(model, tx, LENGTH)
  results = []
  for segment in (1, 3, 20):
    states = create_train_states(model, tx, keys, 1, LENGTH)
    states, loss, _ = run_epoch(steps, states, series, starts, rates, keys,
                                jax.random.key(7), 0, BATCH,
                                SegmentSizer(segment))
    results.append((jax.tree.leaves(states.params), np.asarray(loss)))
  for params, loss in results[1:]:
    np.testing.assert_array_equal(loss, results[0][1])
    for a, b in zip(params, results[0][0], strict=True):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert steps._cache_size() == 1  # one program for every segment length


def test_auto_segments_aim_at_the_target_duration():
  sizer = SegmentSizer(0, seconds=1.0, max_overhead=0.05)
  assert sizer.next(100) == 1
  sizer.observe(1, 0.06)
  assert sizer.next(100) == 2
  sizer.observe(2, 0.11)  # 50 ms a step, 10 ms to dispatch: 1 s is 20 steps
  assert sizer.next(100) == 20 and sizer.next(7) == 7
  costly = SegmentSizer(0, seconds=1.0, max_overhead=0.05)
  costly.observe(1, 0.3)
  costly.observe(2, 0.4)  # 100 ms a step, 200 ms to dispatch: 4 s keeps 5 %
  assert costly.next(1000) == 40
  assert SegmentSizer(5).next(100) == 5


def test_epoch_batches_cover_every_window_once():
  starts = jnp.arange(37, dtype=jnp.int32) + 100
  order, weights = epoch_batches(jax.random.key(0), starts, 8)
  assert order.shape == weights.shape == (5, 8)
  used = np.asarray(order)[np.asarray(weights) > 0]
  np.testing.assert_array_equal(np.sort(used), np.asarray(starts))
  assert float(weights.sum()) == 37


def test_gather_windows_reads_the_rows_before_the_target():
  series = jnp.arange(50, dtype=jnp.float32)[:, None]
  x, y = gather_windows(series, jnp.array([0, 10]), 4)
  np.testing.assert_array_equal(np.asarray(x[..., 0]),
                                [[0, 1, 2, 3], [10, 11, 12, 13]])
  np.testing.assert_array_equal(np.asarray(y), [[4], [14]])
  _, ahead = gather_windows(series, jnp.array([0, 10]), 4, horizon=3)
  np.testing.assert_array_equal(np.asarray(ahead), [[4, 5, 6], [14, 15, 16]])


def test_best_parameters_are_those_of_the_lowest_validation_loss():
  series, starts, model, _, _ = _setup(1)
  val_starts = np.asarray(starts[80:120]) + 40
  loader, val = _data(series, 80, val_starts)
  result = train_variants(model, loader, val, _variants([0.0, 0.3]),
                          _config(epochs=4))
  assert result.epochs_run.tolist() == [4, 4] and len(result.history) == 4
  val = np.array([h["val_loss"] for h in result.history])  # [epochs, K]
  np.testing.assert_allclose(result.best_val_loss, val.min(axis=0))
  np.testing.assert_array_equal(result.best_epoch, val.argmin(axis=0) + 1)
  again = make_eval_loss(model, LENGTH)(result.best_params, series,
                                        jnp.asarray(val_starts, jnp.int32))
  np.testing.assert_allclose(np.asarray(again), result.best_val_loss,
                             rtol=1e-6)


def test_a_diverging_variant_is_frozen_and_leaves_the_others_unchanged():
  series, starts, model, tx, keys = _setup(2)
  rates = jnp.array([0.1, 0.1])
  steps = make_train_steps(model, tx, LENGTH)
  order, weights = shuffle_batches(jax.random.key(7), starts, BATCH)

  def run(poison):
    states = create_train_states(model, tx, keys, 1, LENGTH)
    if poison:  # variant 1's weights blow up from the start
      states = states.replace(params=jax.tree.map(
          lambda p: p.at[1].multiply(jnp.inf), states.params))
    before = jax.tree.map(jnp.copy, states.params)
    states, losses, healthy = steps(
        states, jnp.zeros((20, 2)), jnp.ones(2, bool), series, order,
        weights, rates, keys, jnp.ones(2, bool), np.int32(0), np.int32(0),
        np.int32(20))
    return before, states, np.asarray(healthy)

  _, clean, clean_healthy = run(poison=False)
  before, poisoned, healthy = run(poison=True)
  assert clean_healthy.tolist() == [True, True]
  assert healthy.tolist() == [True, False]
  for a, b, c in zip(jax.tree.leaves(clean.params),
                     jax.tree.leaves(poisoned.params),
                     jax.tree.leaves(before), strict=True):
    np.testing.assert_array_equal(np.asarray(a[0]), np.asarray(b[0]))
    np.testing.assert_array_equal(np.asarray(b[1]), np.asarray(c[1]))


def test_early_stopping_is_per_variant_and_reported():
  series, starts, model, _, _ = _setup(1)
  loader, val = _data(series, 40, np.asarray(starts[80:120]))
  result = train_variants(model, loader, val,
                          _variants([0.0, 0.5], learning_rate=1e-12),
                          _config(epochs=50, patience=3))
  # A learning rate of ~0 improves on nothing after the first epoch.
  assert result.status == ["early_stopped", "early_stopped"]
  np.testing.assert_array_equal(result.epochs_run, [4, 4])
  assert result.history[-1]["epoch"] == 4


def _data(series, train_windows, val_starts, chunk_windows=10**6):
  """A loader over the windows starting at 0 .. train_windows - 1, and the
  validation windows starting at val_starts, of `series`."""
  host = np.asarray(series)
  loader = WindowLoader(lambda lo, hi: host[lo:hi], 0, train_windows,
                        length=LENGTH, batch_size=BATCH,
                        chunk_windows=chunk_windows, seed=0)
  return loader, Windows(host, np.asarray(val_starts, np.int32), 0)


def _train(variants, config, checkpoints=None, chunk_windows=10**6,
           stop=None):
  series, starts, model, _, _ = _setup(1)
  loader, val = _data(series, 80, np.asarray(starts[80:120]) + 40,
                      chunk_windows)
  return train_variants(model, loader, val, variants, config,
                        checkpoints=checkpoints, stop=stop)


def test_a_validation_loss_that_overflows_counts_as_diverged():
  series, starts, model, _, _ = _setup(1)
  # Training rows stay finite; one validation target overflows the squared
  # error (float32), so every variant's validation loss is inf.
  series = series.at[140, 0].set(1e30)
  loader, val = _data(series, 80, np.asarray(starts[120:140]))
  result = train_variants(model, loader, val, _variants([0.0, 0.3]),
                          _config(epochs=3))
  assert result.status == ["diverged", "diverged"]
  assert result.diverged_epoch.tolist() == [1, 1]
  np.testing.assert_array_equal(result.epochs_run, [1, 1])
  assert np.isinf(result.best_val_loss).all()


def test_learning_rates_and_seeds_are_variants_like_dropout(highest_precision):
  variants = [Variant(0.0, 1e-2, 0), Variant(0.0, 1e-3, 0),
              Variant(0.2, 1e-2, 1)]
  config = _config(epochs=2)
  together = _train(variants, config)
  assert len(set(together.best_val_loss.tolist())) == 3
  for k, variant in enumerate(variants):
    alone = _train([variant], config)
    np.testing.assert_allclose(alone.best_val_loss[0],
                               together.best_val_loss[k], rtol=1e-5)
  np.testing.assert_allclose(together.final_learning_rate, [1e-2, 1e-3, 1e-2])


def test_a_diverging_learning_rate_leaves_the_other_variant_bitwise_equal():
  config = _config(epochs=3)
  calm = _train(_variants([0.0, 0.3]), config)
  wild = _train([Variant(0.0, 1e-2, 0), Variant(0.3, 1e30, 0)], config)
  assert calm.status == ["completed", "completed"]
  assert wild.status == ["completed", "diverged"]
  assert wild.diverged_epoch.tolist() == [0, 1]
  assert wild.best_epoch[1] == 0 and np.isinf(wild.best_val_loss[1])
  assert calm.best_val_loss[0] == wild.best_val_loss[0]
  for a, b in zip(jax.tree.leaves(unstack(calm.best_params, 0)),
                  jax.tree.leaves(unstack(wild.best_params, 0)), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert [h["val_loss"][0] for h in calm.history] == [
      h["val_loss"][0] for h in wild.history]


def test_learning_rate_drops_on_a_plateau_down_to_the_floor():
  # At 1e-12 nothing improves after epoch 1: every later epoch is a plateau.
  config = _config(epochs=5, lr_patience=1, lr_factor=0.5,
                   min_learning_rate=1e-13)
  result = _train(_variants([0.0], learning_rate=1e-12), config)
  rates = [h["learning_rate"][0] for h in result.history]
  np.testing.assert_allclose(rates, [1e-12, 5e-13, 2.5e-13, 1.25e-13, 1e-13],
                             rtol=1e-6)
  assert result.final_learning_rate[0] == np.float32(1e-13)


class _Killed(Exception):
  pass


class _KilledAtSave(LoopCheckpoints):
  """Dies when asked for its `fatal`-th save, before writing it."""

  def __init__(self, directory, fatal, **cadence):
    super().__init__(directory, **cadence)
    self.fatal, self.saves = fatal, 0

  def save(self, step, tree, record):
    self.saves += 1
    if self.saves == self.fatal:
      self.close()
      raise _Killed
    super().save(step, tree, record)


def _assert_same_result(a, b):
  for x, y in zip(jax.tree.leaves(a.best_params),
                  jax.tree.leaves(b.best_params), strict=True):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  np.testing.assert_array_equal(a.best_val_loss, b.best_val_loss)
  np.testing.assert_array_equal(a.train_loss_at_best, b.train_loss_at_best)
  assert a.status == b.status
  assert [(h["train_loss"], h["val_loss"], h["learning_rate"])
          for h in a.history] == [
      (h["train_loss"], h["val_loss"], h["learning_rate"]) for h in b.history]


def test_a_loop_killed_at_an_epoch_end_resumes_exactly(tmp_path):
  variants = _variants([0.0, 0.3])
  config = _config(epochs=4, lr_patience=1)
  whole = _train(variants, config)
  with pytest.raises(_Killed):
    _train(variants, config, _KilledAtSave(tmp_path, 3, every_steps=1,
                                           epoch_ends_only=True))
  resumed = LoopCheckpoints(tmp_path, every_steps=1, epoch_ends_only=True)
  _assert_same_result(whole, _train(variants, config, resumed))


@pytest.mark.parametrize("chunk_windows", [10**6, 30])
def test_a_loop_killed_inside_an_epoch_resumes_exactly(tmp_path,
                                                       chunk_windows):
  # 80 windows, 10 steps an epoch: in one chunk, or in chunks of 30, 30, 20
  # windows (4, 4 and 3 steps, the last batch of each chunk padded).
  variants = _variants([0.0, 0.3])
  config = _config(epochs=2, segment_steps=2)
  whole = _train(variants, config, chunk_windows=chunk_windows)
  # Saves every 4 steps or more (at segment or chunk ends); dies at the 4th.
  with pytest.raises(_Killed):
    _train(variants, config, _KilledAtSave(tmp_path, 4, every_steps=4),
           chunk_windows)
  resumed = LoopCheckpoints(tmp_path, every_steps=4)
  assert resumed.restore(None) is not None
  # Other chunks would give other batches from here on: refused, not mixed.
  with pytest.raises(ValueError, match="batch order"):
    _train(variants, config, resumed, 10**6 if chunk_windows == 30 else 30)
  _assert_same_result(whole, _train(variants, config, resumed, chunk_windows))
  if chunk_windows == 30:  # chunks change the batches, so the result
    other = _train(variants, config)
    assert other.best_val_loss.tolist() != whole.best_val_loss.tolist()


@pytest.mark.parametrize("settings,reference", [
    (dict(), lambda: optax.adam(1e-2)),
    (dict(clip_norm=0.5), lambda: optax.chain(optax.clip_by_global_norm(0.5),
                                              optax.adam(1e-2))),
    (dict(weight_decay=0.1), lambda: optax.adamw(1e-2, weight_decay=0.1)),
])
def test_the_optimizer_is_adam_with_the_flags_applied(settings, reference):
  params = {"w": jnp.array([1.0, -2.0, 3.0])}
  grads = [{"w": jnp.array([4.0, 0.5, -3.0])}, {"w": jnp.array([0.1, 2.0, 1.0])}]
  ours = make_optimizer(_config(learning_rates=(1e-2,), **settings))
  theirs = reference()
  ours_state, theirs_state = ours.init(params), theirs.init(params)
  for g in grads:
    a, ours_state = ours.update(g, ours_state, params)
    b, theirs_state = theirs.update(g, theirs_state, params)
    np.testing.assert_allclose(a["w"], b["w"], rtol=1e-6)
  if settings:  # the flag changed something (clipping only shows when
    # gradient norms differ between steps: Adam is blind to a common scale)
    plain = optax.adam(1e-2)
    plain_state = plain.init(params)
    for g in grads:
      c, plain_state = plain.update(g, plain_state, params)
    assert not np.allclose(a["w"], c["w"])


@pytest.mark.parametrize("asked_after", [1, 3, 6])  # segment, chunk, epoch end
def test_a_stop_request_saves_at_the_next_segment_end_and_resumes(
    tmp_path, asked_after):
  # 2 epochs of 3 chunks (4, 4, 3 steps), segments of 2 steps: the request
  # is seen at a segment end, a chunk end or an epoch end.
  variants = _variants([0.0, 0.3])
  config = _config(epochs=2, segment_steps=2)
  whole = _train(variants, config, chunk_windows=30)
  polls = []

  def stop():
    polls.append(1)
    return len(polls) >= asked_after

  rare = dict(every_steps=10**6, every_seconds=10**6)  # saves on request only
  with pytest.raises(Interrupted):
    _train(variants, config, LoopCheckpoints(tmp_path, **rare), 30, stop)
  resumed = LoopCheckpoints(tmp_path, **rare)
  _, record = resumed.restore(None)
  assert 0 < record["done"] < 2 * 11  # it stopped part way, saved there
  _assert_same_result(whole, _train(variants, config, resumed, 30))
