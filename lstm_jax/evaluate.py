"""Test-split forecasts in original units, beside baselines on the same
windows: persistence, seasonal naive (with `--season`), and a linear
autoregression on the same lookback fitted on the training split."""

from __future__ import annotations

import math
from pathlib import Path

import jax
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from lstm_jax.checkpoint import load_model
from lstm_jax.data import Dataset, Scaler
from lstm_jax.fit import RUNNER_UP, is_current
from lstm_jax.metrics import diebold_mariano, errors
from lstm_jax.model import LSTMForecaster
from lstm_jax.train import compiler_options, make_predict

AR_CHUNK = 50_000  # training windows per pass of the least-squares fit


def to_levels(values: np.ndarray, origin: np.ndarray,
              target: str) -> np.ndarray:
  """Forecasts of the target in its model form ([windows, horizon], after
  unscaling) as levels, from each window's last level `origin`."""
  if target == "level":
    return values
  steps = np.cumsum(values, axis=1)
  if target == "diff":
    return origin[:, None] + steps
  return origin[:, None] * np.exp(steps)


def fit_linear_ar(data: Dataset) -> np.ndarray:
  """Least-squares coefficients [T + 1, H] of the H scaled targets on the T
  scaled target values of a window and an intercept, over every training
  window (normal equations accumulated a chunk of windows at a time)."""
  c = data.config
  length, horizon = c.sequence_length, c.horizon
  first, end = data._starts(0, data.splits.train_end)
  gram = np.zeros((length + 1, length + 1))
  cross = np.zeros((length + 1, horizon))
  for lo in range(first, end, AR_CHUNK):
    hi = min(lo + AR_CHUNK, end)
    target = data.scaled(lo, hi + length + horizon - 1)[:, 0].astype(
        np.float64)
    windows = sliding_window_view(target, length + horizon)
    x = np.hstack([windows[:, :length], np.ones((windows.shape[0], 1))])
    gram += x.T @ x
    cross += x.T @ windows[:, length:]
  ridge = 1e-9 * np.trace(gram) / gram.shape[0]  # guards a singular system
  return np.linalg.solve(gram + ridge * np.eye(gram.shape[0]), cross)


def forecast_test(data: Dataset, workdir: Path) -> dict:
  """Forecasts of every test window by the saved model and the baselines.

  Returns rows [windows, H] (the series rows forecast), origin [windows]
  (each window's last level), actual [windows, H], and "forecasts": a dict
  of [windows, H] arrays in original units, one per forecaster ("runner_up"
  too when the search's runner-up was fitted).
  """
  c = data.config
  length, horizon, target = c.sequence_length, c.horizon, c.target
  test = data.test_data()
  last = test.offset + test.starts + length - 1
  rows = last[:, None] + 1 + np.arange(horizon)
  origin = data.levels(last)
  forecasts = {
      "model": _model_forecast(workdir / "checkpoints", test, origin, c),
      "persistence": np.repeat(origin[:, None], horizon, axis=1),
  }
  if is_current(workdir, RUNNER_UP):
    forecasts["runner_up"] = _model_forecast(
        workdir / RUNNER_UP.checkpoints, test, origin, c)
  if c.season:
    back = c.season * np.ceil(np.arange(1, horizon + 1) / c.season)
    forecasts["seasonal_naive"] = data.levels(rows - back.astype(int))
  coef = fit_linear_ar(data)
  lookback = sliding_window_view(test.rows[:, 0].astype(np.float64),
                                 length)[test.starts]
  ar = np.hstack([lookback, np.ones((len(lookback), 1))]) @ coef
  forecasts["linear_ar"] = to_levels(data.scaler.inverse(ar), origin, target)
  return {"rows": rows, "origin": origin, "actual": data.levels(rows),
          "forecasts": forecasts}


def _model_forecast(directory: Path, test, origin: np.ndarray,
                    config) -> np.ndarray:
  """A saved model's forecasts [windows, H] of the `test` windows, in
  levels."""
  params, meta = load_model(directory)
  model = LSTMForecaster(meta["units"], meta["layers"], meta["horizon"])
  predict = jax.jit(make_predict(model, config.sequence_length),
                    compiler_options=compiler_options())
  scaled = np.asarray(predict(params, jax.device_put(test.rows),
                              jax.device_put(test.starts)))
  scaler = Scaler(**meta["scaler"])
  return to_levels(scaler.inverse(scaled), origin, config.target)


def test_metrics(data: Dataset, result: dict) -> dict:
  """Metrics of every forecaster, skill against persistence, errors on the
  normalised scale, and Diebold-Mariano tests of the model."""
  c = data.config
  level_std, naive_scale = data.level_statistics()
  actual, origin = result["actual"], result["origin"]
  metrics = {name: errors(f, actual, origin, naive_scale)
             for name, f in result["forecasts"].items()}
  model_errors = result["forecasts"]["model"] - actual
  tests = {
      f"vs_{name}": diebold_mariano(model_errors, f - actual, c.horizon)
      for name, f in result["forecasts"].items() if name != "model"}
  normalised = {name: {"mse": m["mse"] / level_std**2,
                       "mae": m["mae"] / level_std}
                for name, m in metrics.items()}
  return {
      "windows": int(actual.shape[0]), "horizon": c.horizon,
      "target": c.target,
      "skill_vs_persistence": skill(metrics, "persistence"),
      "skill_vs_linear_ar": skill(metrics, "linear_ar"),
      **metrics,
      "normalised": normalised,
      "diebold_mariano": tests,
      "mase_scale": naive_scale,
      "level_std": level_std,
  }


def skill(metrics: dict, name: str) -> float:
  """1 - MSE of the model / MSE of forecaster `name`."""
  other = metrics[name]["mse"]
  return 1.0 - metrics["model"]["mse"] / other if other > 0 else math.nan
