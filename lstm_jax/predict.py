"""Forecasting forward from a finished run: the next values after the end
of a series, from the run directory alone (no training code runs)."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from lstm_jax import rundir
from lstm_jax.checkpoint import load_model
from lstm_jax.data import (
    DataError,
    ReadOptions,
    Scaler,
    demo_series,
    read_series,
)
from lstm_jax.data.dataset import model_values
from lstm_jax.evaluate import to_levels
from lstm_jax.model import LSTMForecaster
from lstm_jax.train import make_predict


def forecast(workdir: Path, data: str | None = None,
             cache_dir: Path | None = None) -> list[dict]:
  """The next `horizon` values after the series' last row: dicts of step,
  time (or None) and forecast, in the series' original units."""
  if not (workdir / "checkpoints").exists():
    raise rundir.RunDirError(f"{workdir / 'checkpoints'}: missing; finish "
                             "the run's fit first (--phase=fit)")
  params, meta = load_model(workdir / "checkpoints")
  features = tuple(meta.get("features") or (meta["column"],))
  summary = rundir.read_json(workdir / "data_summary.json")
  options = ReadOptions(**summary.get("read_options", {}))  # as the run read
  if data is None and summary["source"].startswith("synthetic demo series"):
    series = demo_series()
  elif data is None:
    if not Path(summary["source"]).exists():
      raise DataError(f"{summary['source']}: the run's data is no longer "
                      "there; give the series to continue with --data")
    series = read_series(summary["source"], meta["column"], features,
                         cache_dir, options)
  else:
    series = read_series(data, meta["column"], features, cache_dir, options)
  length, horizon = meta["sequence_length"], meta["horizon"]
  target = meta.get("target", "level")
  needed = length + (target != "level")
  if series.rows < needed:
    raise DataError(f"{data or 'the series'}: {series.rows} rows; the model "
                    f"reads windows of {length} rows, so at least {needed} "
                    "are needed")
  scaler = Scaler(**meta["scaler"])
  window = scaler.transform(model_values(series, target, series.rows - length,
                                         series.rows))
  model = LSTMForecaster(meta["units"], meta["layers"], horizon)
  scaled = jax.jit(make_predict(model, length))(
      params, jax.device_put(window), jax.device_put(np.zeros(1, np.int32)))
  last = np.asarray(series.values[-1:, 0], np.float64)
  levels = to_levels(scaler.inverse(np.asarray(scaled)), last, target)[0]
  times = _next_times(series, horizon)
  return [dict(step=h + 1, time=times[h], forecast=float(levels[h]))
          for h in range(horizon)]


def _next_times(series, horizon: int) -> list[str | None]:
  if series.times is None or series.rows < 2:
    return [None] * horizon
  tail = np.asarray(series.times[-min(series.rows, 1000):], np.int64)
  step = int(np.median(np.diff(tail)))
  last = int(tail[-1])
  return [str(np.datetime64(last + step * (h + 1), "s")).replace("T", " ")
          for h in range(horizon)]


