"""The whole job on one run directory: search, final fit, evaluation.

Each phase reads only what the earlier ones wrote to the run directory, so
each can be run or re-run alone.
"""

from __future__ import annotations

import time
from pathlib import Path

from absl import logging

from lstm_jax import evaluate, report, rundir, search
from lstm_jax.config import SPEED_FIELDS, fingerprint, to_dict
from lstm_jax.data import Dataset
from lstm_jax.fit import SUMMARY_FILE, run_fit

PHASES = ("search", "fit", "evaluate")


def identity(data: Dataset) -> dict:
  """What a run directory's results mean: the settings and the data."""
  config = {k: v for k, v in to_dict(data.config).items()
            if k not in SPEED_FIELDS}
  summary = data.summary()
  values = {"config": config,
            "data": {"column": summary["column"], "rows": summary["rows"],
                     "fingerprint": summary["fingerprint"]}}
  return {**values, "fingerprint": fingerprint(values)}


def run(data: Dataset, workdir: Path, phase: str = "all") -> dict:
  """Runs `phase` (or all phases in order); returns the seconds of each."""
  rundir.claim(workdir, identity(data))
  rundir.write_json(workdir / "data_summary.json", data.summary())
  rundir.write_json(workdir / "config.json", to_dict(data.config))
  timings_path = workdir / "timings.json"
  timings = rundir.read_json(timings_path) if timings_path.exists() else {}
  for name in PHASES if phase == "all" else (phase,):
    started = time.perf_counter()
    logging.info("phase %s: starting", name)
    _PHASE_FUNCTIONS[name](data, workdir)
    timings[name] = round(time.perf_counter() - started, 2)
    rundir.write_json(timings_path, timings)
    logging.info("phase %s: done in %.1fs", name, timings[name])
  return timings


def _fit(data: Dataset, workdir: Path) -> None:
  if (workdir / SUMMARY_FILE).exists():
    logging.info("fit done before (%s exists), skipped", SUMMARY_FILE)
    return
  run_fit(data, workdir)


def _evaluate(data: Dataset, workdir: Path) -> None:
  forecasts = evaluate.forecast_test(data, workdir)
  metrics = evaluate.test_metrics(forecasts)
  report.write_report(workdir, metrics, forecasts)
  model, naive = metrics["model"], metrics["persistence"]
  logging.info("test RMSE %.5g (persistence %.5g), MAE %.5g (persistence "
               "%.5g), skill %.4f", model["rmse"], naive["rmse"], model["mae"],
               naive["mae"], metrics["skill_vs_persistence"])


_PHASE_FUNCTIONS = {"search": search.run_search, "fit": _fit,
                    "evaluate": _evaluate}
