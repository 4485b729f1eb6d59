"""The Flax LSTM against a plain NumPy float64 reference, and dropout."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lstm_jax.model import LSTMForecaster, parameter_count


def _sigmoid(z):
  return 1.0 / (1.0 + np.exp(-z))


def reference_forecast(params, x, layers):
  """A textbook LSTM, one time step at a time, in float64."""
  h_seq = np.asarray(x, np.float64)
  for layer in range(layers):
    p = {k: np.asarray(v, np.float64) for k, v in params[f"lstm_{layer}"].items()}
    units = p["w_h"].shape[0]
    h = np.zeros((x.shape[0], units))
    c = np.zeros((x.shape[0], units))
    outputs = []
    for t in range(h_seq.shape[1]):
      z = h_seq[:, t] @ p["w_x"] + h @ p["w_h"] + p["b"]
      i, f, g, o = np.split(z, 4, axis=-1)
      c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
      h = _sigmoid(o) * np.tanh(c)
      outputs.append(h)
    h_seq = np.stack(outputs, axis=1)
  head = params["head"]
  return h_seq[:, -1] @ np.asarray(head["kernel"], np.float64) + np.asarray(
      head["bias"], np.float64)


def _random_params(model, key, x):
  params = model.init(key, x)["params"]
  leaves, treedef = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.fold_in(key, 1), len(leaves))
  # Random everywhere (biases included), scaled so gates are not saturated.
  leaves = [0.4 * jax.random.normal(k, leaf.shape)
            for k, leaf in zip(keys, leaves, strict=True)]
  return jax.tree.unflatten(treedef, leaves)


@pytest.mark.parametrize("units,layers,features", [(8, 1, 1), (16, 3, 4)])
def test_forward_matches_numpy_reference(highest_precision, units, layers,
                                         features):
  x = jax.random.normal(jax.random.key(0), (5, 12, features))
  model = LSTMForecaster(units, layers, horizon=2)
  params = _random_params(model, jax.random.key(1), x)
  got = np.asarray(model.apply({"params": params}, x), np.float64)
  want = reference_forecast(params, np.asarray(x), layers)
  assert got.shape == want.shape == (5, 2)
  for out in range(2):
    rel = np.linalg.norm(got[:, out] - want[:, out]) / np.linalg.norm(want[:, out])
    assert rel < 1e-5, (out, rel)


def _plain_jax_forecast(params, x, layers):
  """The textbook LSTM of `reference_forecast` in jax.numpy, so that JAX's
  own autodiff gives reference gradients for the hand-written backward."""
  h_seq = x
  for layer in range(layers):
    p = params[f"lstm_{layer}"]
    h = c = jnp.zeros((x.shape[0], p["w_h"].shape[0]))
    outputs = []
    for t in range(x.shape[1]):
      i, f, g, o = jnp.split(h_seq[:, t] @ p["w_x"] + h @ p["w_h"] + p["b"],
                             4, axis=-1)
      c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
      h = jax.nn.sigmoid(o) * jnp.tanh(c)
      outputs.append(h)
    h_seq = jnp.stack(outputs, axis=1)
  return h_seq[:, -1] @ params["head"]["kernel"] + params["head"]["bias"]


@pytest.mark.parametrize("units,layers,features", [(8, 1, 1), (16, 3, 4)])
def test_gradients_match_autodiff_of_a_plain_lstm(highest_precision, units,
                                                  layers, features):
  x = jax.random.normal(jax.random.key(0), (5, 12, features))
  y = jax.random.normal(jax.random.key(2), (5, 2))
  model = LSTMForecaster(units, layers, horizon=2)
  params = _random_params(model, jax.random.key(1), x)

  def loss(forecast):
    # Weighted by step, so that every output feeds the gradient differently.
    return lambda p, x: jnp.sum(jnp.arange(1.0, 6.0)[:, None]
                                * (forecast(p, x) - y) ** 2)

  got = jax.grad(loss(lambda p, x: model.apply({"params": p}, x)),
                 argnums=(0, 1))(params, x)
  want = jax.grad(loss(lambda p, x: _plain_jax_forecast(p, x, layers)),
                  argnums=(0, 1))(params, x)
  for path, g, w in zip(jax.tree_util.tree_leaves_with_path(got),
                        jax.tree.leaves(got), jax.tree.leaves(want),
                        strict=True):
    rel = np.linalg.norm(g - w) / np.linalg.norm(w)
    assert rel < 1e-5, (jax.tree_util.keystr(path[0]), rel)


def test_bfloat16_matmuls_stay_close_to_the_reference():
  x = jax.random.normal(jax.random.key(0), (6, 16, 2))
  model = LSTMForecaster(16, 2, matmul_dtype=jnp.bfloat16)
  params = _random_params(model, jax.random.key(1), x)
  got = np.asarray(model.apply({"params": params}, x), np.float64)[:, 0]
  want = reference_forecast(params, np.asarray(x), 2)[:, 0]
  rel = np.linalg.norm(got - want) / np.linalg.norm(want)
  assert 1e-6 < rel < 1e-2  # bfloat16 is used, and is close enough


def test_dropout_zero_is_identity_and_positive_rate_changes_one_layer():
  x = jax.random.normal(jax.random.key(0), (7, 10, 1))
  model = LSTMForecaster(12, 1)
  params = model.init(jax.random.key(1), x)["params"]
  evaluated = model.apply({"params": params}, x)
  key = jax.random.key(2)
  train_zero = model.apply({"params": params}, x, jnp.float32(0.0), key)
  train_half = model.apply({"params": params}, x, jnp.float32(0.5), key)
  np.testing.assert_array_equal(np.asarray(train_zero), np.asarray(evaluated))
  assert np.max(np.abs(np.asarray(train_half - evaluated))) > 1e-3


def test_parameter_count_is_exact():
  x = jnp.zeros((1, 5, 3))
  params = LSTMForecaster(10, 2).init(jax.random.key(0), x)["params"]
  # Per layer 4H(I + H + 1); head H + 1.
  want = 4 * 10 * (3 + 10 + 1) + 4 * 10 * (10 + 10 + 1) + 10 + 1
  assert parameter_count(params) == want
