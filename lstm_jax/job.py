"""The whole job on one run directory: search, final fit, evaluation.

Each phase reads only what the earlier ones wrote to the run directory, so
each can be run or re-run alone.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from absl import logging

from lstm_jax import evaluate, report, rundir, search
from lstm_jax.config import NON_IDENTITY_FIELDS, fingerprint, to_dict
from lstm_jax.data import Dataset
from lstm_jax.fit import RUNNER_UP, SELECTED, is_current, run_fit

PHASES = ("search", "fit", "evaluate")


def identity(data: Dataset) -> dict:
  """What a run directory's results mean: the settings and the data."""
  config = {k: v for k, v in to_dict(data.config).items()
            if k not in NON_IDENTITY_FIELDS}
  summary = data.summary()
  values = {"config": config,
            "data": {"column": summary["column"],
                     "features": summary["features"], "rows": summary["rows"],
                     "fingerprint": summary["fingerprint"]}}
  return {**values, "fingerprint": fingerprint(values)}


def run(data: Dataset, workdir: Path, phase: str = "all",
        fit_progress=None, stop=None) -> dict:
  """Runs `phase` (or all phases in order); returns the seconds of each.
  `fit_progress` is the final fit's progress display (see `run_fit`);
  `stop()` turning true ends training at its next segment end, saved (see
  `train_variants`)."""
  phases = PHASES if phase == "all" else (phase,)
  _check_inputs(workdir, phases[0])
  rundir.claim(workdir, identity(data))
  rundir.write_json(workdir / "data_summary.json", data.summary())
  rundir.write_json(workdir / "config.json", to_dict(data.config))
  timings_path = workdir / "timings.json"
  timings = rundir.read_json(timings_path) if timings_path.exists() else {}
  for name in phases:
    started = time.perf_counter()
    logging.info("phase %s: starting", name)
    work = _PHASE_FUNCTIONS[name]
    if work(data, workdir, progress=fit_progress, stop=stop):  # False: done
      timings[name] = round(time.perf_counter() - started, 2)
      rundir.write_json(timings_path, timings)
    logging.info("phase %s: done in %.1fs", name,
                 time.perf_counter() - started)
  return timings


# What a phase needs from the phases before it.
_INPUTS = {"fit": ("selected.json", "search"), "evaluate": (
    "checkpoints", "fit")}


def _check_inputs(workdir: Path, phase: str) -> None:
  if phase in _INPUTS:
    name, before = _INPUTS[phase]
    if not (workdir / name).exists():
      raise rundir.RunDirError(
          f"{workdir / name}: missing; run --phase={before} first")


def _search(data: Dataset, workdir: Path, progress=None, stop=None) -> bool:
  del progress  # the search logs a line per cell instead
  trained = search.run_search(data, workdir, stop)
  for _ in range(data.config.auto_expand):
    selected = rundir.read_json(workdir / "selected.json")
    wider = search.widened(data.config, selected)
    if wider is None:
      break
    logging.info("auto_expand: the winner sits at the grid's edge; searching "
                 "units %s, layers %s", ",".join(map(str, wider.units)),
                 ",".join(map(str, wider.layers)))
    data = dataclasses.replace(data, config=wider)
    trained += search.run_search(data, workdir, stop)
  return trained > 0


def _fit(data: Dataset, workdir: Path, progress=None, stop=None) -> bool:
  """Fits the selected configuration and, with --compare_runner_up, the
  runner-up; a fit done before for the same configuration is kept."""
  trained = False
  if is_current(workdir, SELECTED):
    logging.info("fit of the selected configuration done before, skipped")
  else:
    run_fit(data, workdir, progress, stop=stop)
    trained = True
  if not (data.config.compare_runner_up
          and (workdir / RUNNER_UP.selection).exists()):
    return trained
  if is_current(workdir, RUNNER_UP):
    logging.info("fit of the runner-up done before, skipped")
    return trained
  runner_up = rundir.read_json(workdir / RUNNER_UP.selection)
  logging.info("fit of the runner-up (units=%d layers=%d dropout %g, "
               "learning rate %g), to test the winner against",
               runner_up["units"], runner_up["layers"], runner_up["dropout"],
               runner_up["learning_rate"])
  try:
    run_fit(data, workdir, progress, RUNNER_UP, stop)
  except rundir.RunDirError as error:  # diverged: the winner's fit stands
    logging.warning("%s; the report compares no runner-up", error)
  return True


def _evaluate(data: Dataset, workdir: Path, progress=None, stop=None) -> bool:
  del progress, stop  # seconds long, without a training loop
  result = evaluate.forecast_test(data, workdir)
  metrics = evaluate.test_metrics(data, result)
  report.write_report(workdir, metrics, result)
  model, naive, ar = (metrics["model"], metrics["persistence"],
                      metrics["linear_ar"])
  beats = "beats" if metrics["skill_vs_persistence"] > 0 else "does not beat"
  tests = metrics["diebold_mariano"]
  logging.info("test RMSE %.5g (persistence %.5g, linear AR %.5g), MAE %.5g "
               "(persistence %.5g): the model %s persistence (skill %.4f, "
               "Diebold-Mariano p %.3g)", model["rmse"], naive["rmse"],
               ar["rmse"], model["mae"], naive["mae"], beats,
               metrics["skill_vs_persistence"],
               tests["vs_persistence"]["p_value"])
  if "vs_runner_up" in tests:
    logging.info("against the runner-up: test RMSE %.5g vs %.5g, "
                 "Diebold-Mariano p %.3g", model["rmse"],
                 metrics["runner_up"]["rmse"],
                 tests["vs_runner_up"]["p_value"])
  return True


_PHASE_FUNCTIONS = {"search": _search, "fit": _fit,
                    "evaluate": _evaluate}
