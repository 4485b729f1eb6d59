"""Forecast error metrics and the Diebold-Mariano test, in NumPy.

Forecasts and actual values are [windows, horizon] arrays in the series'
original units; `origin` [windows] holds the last value each window saw
(the value a change is measured from).
"""

from __future__ import annotations

import math

import numpy as np


def errors(forecast: np.ndarray, actual: np.ndarray, origin: np.ndarray,
           scale: float) -> dict:
  """Metrics over all windows and steps, and per step ("per_step").

  MAPE skips zero targets (counted in "mape_skipped"); sMAPE uses
  |f - a| / ((|f| + |a|) / 2); MASE divides MAE by `scale`, the mean
  absolute one-step change of the training split; directional accuracy is
  the share of windows where the forecast moves from the origin the way the
  actual value does (unchanged actual values left out; None when the
  forecast never moves, as persistence's does not).
  """
  forecast = np.asarray(forecast, np.float64)
  actual = np.asarray(actual, np.float64)
  origin = np.asarray(origin, np.float64)[:, None]
  overall = _metrics(forecast, actual, origin, scale)
  steps = [_metrics(forecast[:, h:h + 1], actual[:, h:h + 1], origin, scale)
           for h in range(actual.shape[1])]
  return {**overall, "per_step": steps if len(steps) > 1 else []}


def _metrics(forecast, actual, origin, scale) -> dict:
  diff = forecast - actual
  mse = float(np.mean(diff**2))
  nonzero = actual != 0
  denominator = (np.abs(forecast) + np.abs(actual)) / 2
  moved = (actual - origin) != 0
  agree = np.sign(forecast - origin) == np.sign(actual - origin)
  return {
      "mse": mse, "rmse": math.sqrt(mse), "mae": float(np.mean(np.abs(diff))),
      "mape": _mean(np.abs(diff[nonzero] / actual[nonzero])) * 100,
      "mape_skipped": int((~nonzero).sum()),
      "smape": _mean(np.abs(diff)[denominator > 0]
                     / denominator[denominator > 0]) * 100,
      "mase": float(np.mean(np.abs(diff))) / scale if scale > 0 else math.nan,
      # Undefined (None) for a forecast that never moves, e.g. persistence.
      "directional_accuracy": (_mean(agree[moved])
                               if (forecast != origin).any() else None),
  }


def _mean(values: np.ndarray) -> float:
  return float(np.mean(values)) if values.size else math.nan


def diebold_mariano(errors_a: np.ndarray, errors_b: np.ndarray,
                    horizon: int = 1) -> dict:
  """Diebold-Mariano test of equal squared-error loss of two forecasts.

  errors_*: [windows, steps] forecast errors on the same windows. The loss
  differential d_t is the mean over steps of e_a^2 - e_b^2; its variance is
  the Newey-West estimate with `horizon` - 1 lags (h-step forecasts overlap),
  with the small-sample correction of Harvey, Leybourne and Newbold (1997).
  A negative statistic means forecast a has the smaller loss. The p-value is
  two-sided, from Student's t with n - 1 degrees of freedom approximated by
  the normal distribution (n is in the hundreds or more here).
  """
  a = np.asarray(errors_a, np.float64).reshape(len(errors_a), -1)
  b = np.asarray(errors_b, np.float64).reshape(len(errors_b), -1)
  d = np.mean(a**2, axis=1) - np.mean(b**2, axis=1)
  n = d.size
  centred = d - d.mean()
  variance = np.dot(centred, centred) / n
  for lag in range(1, horizon):
    variance += 2 * np.dot(centred[lag:], centred[:-lag]) / n
  if not variance > 0:
    return {"statistic": math.nan, "p_value": math.nan, "windows": n}
  statistic = d.mean() / math.sqrt(variance / n)
  correction = math.sqrt((n + 1 - 2 * horizon
                          + horizon * (horizon - 1) / n) / n)
  statistic *= correction
  p_value = math.erfc(abs(statistic) / math.sqrt(2))
  return {"statistic": float(statistic), "p_value": float(p_value),
          "windows": n}
