"""Test-split forecasts in original units, next to the persistence forecast."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from lstm_jax.checkpoint import load_model
from lstm_jax.data import Dataset, Scaler
from lstm_jax.model import LSTMForecaster
from lstm_jax.train import make_predict


def errors(forecast: np.ndarray, actual: np.ndarray) -> dict[str, float]:
  """MSE, RMSE and MAE of forecast against actual (same units)."""
  diff = np.asarray(forecast, np.float64) - np.asarray(actual, np.float64)
  mse = float(np.mean(diff**2))
  return {"mse": mse, "rmse": float(np.sqrt(mse)),
          "mae": float(np.mean(np.abs(diff)))}


def forecast_test(data: Dataset, workdir: Path) -> dict[str, np.ndarray]:
  """Forecasts of every test window by the saved model, original units.

  Returns arrays [windows]: target rows, actual values, the model's and the
  persistence forecasts.
  """
  params, meta = load_model(workdir / "checkpoints")
  length = meta["sequence_length"]
  model = LSTMForecaster(meta["units"], meta["layers"], meta["horizon"])
  test = data.test_data()
  predict = jax.jit(make_predict(model, length))
  scaled = predict(params, jax.device_put(test.rows),
                   jax.device_put(test.starts))[:, 0]
  scaler = Scaler(**meta["scaler"])
  target = data.series.values[:, 0]
  rows = test.offset + test.starts + length
  return {"rows": rows, "actual": target[rows].astype(np.float64),
          "model": scaler.inverse(np.asarray(scaled)),
          "persistence": target[rows - 1].astype(np.float64)}


def test_metrics(forecasts: dict[str, np.ndarray]) -> dict:
  model = errors(forecasts["model"], forecasts["actual"])
  persistence = errors(forecasts["persistence"], forecasts["actual"])
  return {"windows": int(forecasts["rows"].shape[0]),
          "skill_vs_persistence": 1.0 - model["mse"] / persistence["mse"],
          "model": model, "persistence": persistence}
