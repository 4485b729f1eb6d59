"""Forecasting forward from a finished run: the next values after the end
of a series, from the run directory alone (no training code runs)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np

from lstm_jax import rundir
from lstm_jax.checkpoint import load_model
from lstm_jax.data import (
    ColumnError,
    DataError,
    ReadOptions,
    Scaler,
    demo_series,
    read_series,
)
from lstm_jax.data.dataset import model_values
from lstm_jax.evaluate import to_levels
from lstm_jax.model import LSTMForecaster
from lstm_jax.train import compiler_options, make_predict


def forecast(workdir: Path, data: str | None = None,
             cache_dir: Path | None = None, missing: str | None = None,
             decimal: str | None = None) -> list[dict]:
  """The next `horizon` values after the series' last row: dicts of step,
  time (or None) and forecast, in the series' original units. `missing`
  and `decimal` (see ReadOptions) default to how the run read its file."""
  if not workdir.is_dir():
    raise rundir.RunDirError(f"{workdir}: no such run directory; give the "
                             "--workdir of a run whose fit has finished")
  if not (workdir / "checkpoints").exists():
    raise rundir.RunDirError(f"{workdir / 'checkpoints'}: missing; finish "
                             "the run's fit first (--phase=fit)")
  params, meta = load_model(workdir / "checkpoints")
  features = tuple(meta.get("features") or (meta["column"],))
  summary = rundir.read_json(workdir / "data_summary.json")
  options = ReadOptions(**summary.get("read_options", {}))  # as the run
  options = dataclasses.replace(options, missing=missing or options.missing,
                                decimal=decimal or options.decimal)
  if data is None and summary["source"].startswith("synthetic demo series"):
    series = demo_series()
  elif data is None:
    if not Path(summary["source"]).exists():
      raise DataError(f"{summary['source']}: the run's data is no longer "
                      "there; give the series to continue with --data")
    series = read_series(summary["source"], meta["column"], features,
                         cache_dir, options)
  else:
    try:
      series = read_series(data, meta["column"], features, cache_dir,
                           options)
    except ColumnError as error:
      raise DataError(
          f"{data}: no column {error.name!r}, which the run's model reads "
          f"(it was trained on {', '.join(features)}); the file's columns "
          f"are {', '.join(error.columns)}; give a file with those "
          "columns") from None
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
  scaled = jax.jit(make_predict(model, length),
                   compiler_options=compiler_options())(
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


