"""Metrics, baselines, target transforms and the Diebold-Mariano test."""

import math

import numpy as np
import pytest

from lstm_jax.config import make_config
from lstm_jax.data import Series, prepare_dataset
from lstm_jax.evaluate import fit_linear_ar, to_levels
from lstm_jax.metrics import diebold_mariano, errors
from lstm_jax.train import gather_windows


def test_metrics_known_answers():
  actual = np.array([[2.0], [0.0], [4.0], [5.0]])
  forecast = np.array([[3.0], [1.0], [2.0], [5.0]])
  origin = np.array([1.0, 1.0, 3.0, 5.0])
  m = errors(forecast, actual, origin, scale=2.0)
  assert m["mse"] == pytest.approx((1 + 1 + 4 + 0) / 4)
  assert m["mae"] == pytest.approx(1.0) and m["mase"] == pytest.approx(0.5)
  # MAPE skips the zero target: |1/2|, |2/4|, 0 -> mean 1/3.
  assert m["mape"] == pytest.approx(100 / 3) and m["mape_skipped"] == 1
  # sMAPE: 1/2.5, 1/0.5, 2/3, 0 over 4.
  assert m["smape"] == pytest.approx(100 * (0.4 + 2 + 2 / 3) / 4)
  # Directions from the origin: up/up, down/up, down/up; the last did not
  # move and is left out.
  assert m["directional_accuracy"] == pytest.approx(1 / 3)
  assert m["per_step"] == []
  # A forecast that stays at the origin has no direction to be right about.
  still = errors(origin[:, None], actual, origin, scale=2.0)
  assert still["directional_accuracy"] is None
  two = errors(np.hstack([forecast, forecast]), np.hstack([actual, actual]),
               origin, 2.0)
  assert len(two["per_step"]) == 2 and two["mse"] == pytest.approx(m["mse"])


def test_diebold_mariano_against_a_hand_computation():
  rng = np.random.default_rng(0)
  a, b = rng.normal(0, 1.0, (400, 1)), rng.normal(0, 1.3, (400, 1))
  d = a[:, 0] ** 2 - b[:, 0] ** 2
  n = d.size
  plain = d.mean() / math.sqrt(np.mean((d - d.mean()) ** 2) / n)
  hln = math.sqrt((n + 1 - 2 + 0) / n)
  result = diebold_mariano(a, b, horizon=1)
  assert result["statistic"] == pytest.approx(plain * hln)
  assert result["statistic"] < 0 and result["p_value"] < 0.01
  assert result["p_value"] == pytest.approx(
      math.erfc(abs(plain * hln) / math.sqrt(2)))
  same = diebold_mariano(a, a)
  assert math.isnan(same["statistic"]) and math.isnan(same["p_value"])
  # Swapping the forecasts flips the sign, not the p-value.
  swapped = diebold_mariano(b, a)
  assert swapped["statistic"] == pytest.approx(-result["statistic"])


def test_changes_reconstruct_to_levels():
  origin = np.array([10.0, 20.0])
  changes = np.array([[1.0, 2.0], [-1.0, 0.5]])
  np.testing.assert_allclose(to_levels(changes, origin, "diff"),
                             [[11, 13], [19, 19.5]])
  np.testing.assert_allclose(
      to_levels(np.log([[1.1, 1.1]] * 2), origin, "log_return"),
      [[11, 12.1], [22, 24.2]])
  np.testing.assert_array_equal(to_levels(changes, origin, "level"), changes)


@pytest.mark.parametrize("target", ["level", "diff", "log_return"])
def test_true_targets_give_back_the_actual_levels(target):
  """The whole chain: model values, scaling, windows with a horizon, and
  the way back to levels, on exact targets."""
  rng = np.random.default_rng(1)
  levels = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 400)))
  config = make_config(sequence_length=8, horizon=3, target=target,
                       optimization_train_window=50,
                       optimization_val_window=30)
  data, _ = prepare_dataset(Series.from_values(levels, "p", "t"), config)
  test = data.test_data()
  _, y = gather_windows(test.rows, test.starts, 8, 3)  # scaled targets
  last = test.offset + test.starts + 7
  back = to_levels(data.scaler.inverse(np.asarray(y)), data.levels(last),
                   target)
  rows = last[:, None] + 1 + np.arange(3)
  np.testing.assert_allclose(back, data.levels(rows), rtol=2e-5)
  # Every test target row is forecast, and none outside the split.
  assert rows.min() == data.splits.val_end
  assert rows.max() == data.splits.test_end - 1


def test_linear_ar_recovers_a_known_process():
  rng = np.random.default_rng(2)
  y = np.zeros(20000)
  for t in range(2, y.size):
    y[t] = 0.6 * y[t - 1] + 0.3 * y[t - 2] + rng.normal()
  config = make_config(sequence_length=2, optimization_train_window=100,
                       optimization_val_window=100)
  data, _ = prepare_dataset(Series.from_values(y, "y", "t"), config)
  coef = fit_linear_ar(data)  # oldest value first, then the intercept
  np.testing.assert_allclose(coef[:2, 0], [0.3, 0.6], atol=0.02)
  assert abs(coef[2, 0]) < 0.02


def test_log_return_needs_a_positive_series():
  from lstm_jax.data import DataError
  values = np.linspace(5, -1, 300)
  with pytest.raises(DataError, match="--target=log_return needs a positive"):
    prepare_dataset(Series.from_values(values, "p", "t"),
                    make_config(sequence_length=5, target="log_return"))
