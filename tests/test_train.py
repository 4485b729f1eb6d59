"""Vmapped training equals training each variant alone; batching is exact."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lstm_jax.model import LSTMForecaster
from lstm_jax.train import (
    create_train_states,
    epoch_batches,
    gather_windows,
    make_eval_loss,
    make_train_epoch,
    train_variants,
    unstack,
)

LENGTH, BATCH = 8, 8


def _setup(count):
  rng = np.random.default_rng(0)
  series = jnp.asarray(rng.normal(size=(200, 1)), jnp.float32)
  starts = jnp.arange(160, dtype=jnp.int32)  # 20 steps of 8 windows
  model = LSTMForecaster(6, 2)
  tx = optax.adam(1e-2)
  keys = jnp.stack([jax.random.fold_in(jax.random.key(5), k)
                    for k in range(count)])
  return series, starts, model, tx, keys


def test_vmapped_variants_equal_each_variant_alone(highest_precision):
  rates = jnp.array([0.0, 0.2, 0.5])
  series, starts, model, tx, keys = _setup(3)
  dropout_keys = jax.vmap(lambda k: jax.random.fold_in(k, 99))(keys)
  shuffle_key = jax.random.key(7)
  epoch = make_train_epoch(model, tx, BATCH, LENGTH)

  states = create_train_states(model, tx, keys, 1, LENGTH)
  together, loss_together = epoch(states, series, starts, rates, dropout_keys,
                                  shuffle_key, 0)
  for k in range(3):
    alone_state = create_train_states(model, tx, keys[k:k + 1], 1, LENGTH)
    alone, loss_alone = epoch(alone_state, series, starts, rates[k:k + 1],
                              dropout_keys[k:k + 1], shuffle_key, 0)
    np.testing.assert_allclose(loss_alone[0], loss_together[k], rtol=1e-4)
    pairs = zip(jax.tree.leaves(unstack(together.params, k)),
                jax.tree.leaves(unstack(alone.params, 0)), strict=True)
    for a, b in pairs:
      rel = np.linalg.norm(a - b) / np.linalg.norm(b)
      assert rel < 1e-4, rel
  # The variants did train differently: dropout is not a no-op.
  assert not np.allclose(loss_together[0], loss_together[2])


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
  np.testing.assert_array_equal(np.asarray(y), [4, 14])


def test_epoch_compiles_once_for_every_epoch_and_rate():
  series, starts, model, tx, keys = _setup(2)
  epoch = make_train_epoch(model, tx, BATCH, LENGTH)
  states = create_train_states(model, tx, keys, 1, LENGTH)
  for index, rates in enumerate(([0.0, 0.1], [0.3, 0.5], [0.2, 0.2])):
    states, _ = epoch(states, series, starts, jnp.array(rates), keys,
                      jax.random.key(0), np.int32(index))
  assert epoch._cache_size() == 1


def test_best_parameters_are_those_of_the_lowest_validation_loss():
  series, starts, model, _, _ = _setup(1)
  val_starts = np.asarray(starts[80:120]) + 40
  result = train_variants(
      model, series, np.asarray(starts[:80]), val_starts,
      np.array([0.0, 0.3]), seed=0, learning_rate=1e-2, batch_size=BATCH,
      length=LENGTH, epochs=4)
  assert result.epochs_run == 4 and len(result.history) == 4
  val = np.array([h["val_loss"] for h in result.history])  # [epochs, K]
  np.testing.assert_allclose(result.best_val_loss, val.min(axis=0))
  np.testing.assert_array_equal(result.best_epoch, val.argmin(axis=0) + 1)
  again = make_eval_loss(model, LENGTH)(result.best_params, series,
                                        jnp.asarray(val_starts))
  np.testing.assert_allclose(np.asarray(again), result.best_val_loss,
                             rtol=1e-6)


def test_patience_stops_when_no_variant_improves():
  series, starts, model, tx, _ = _setup(1)
  # A learning rate of ~0 never improves on the first epoch's loss.
  result = train_variants(
      model, series, np.asarray(starts[:40]), np.asarray(starts[80:120]),
      np.array([0.0]), seed=0, learning_rate=1e-12, batch_size=BATCH,
      length=LENGTH, epochs=50, patience=3)
  assert result.epochs_run < 50
  assert result.epochs_run - result.best_epoch[0] == 3
