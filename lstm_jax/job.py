"""The whole job on one run directory: search, final fit, evaluation.

Each phase reads only what the earlier ones wrote to the run directory, so
each can be run or re-run alone.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import jax
from absl import logging

from lstm_jax import evaluate, report, rundir, search
from lstm_jax.config import NON_IDENTITY_FIELDS, fingerprint, to_dict
from lstm_jax.data import Dataset
from lstm_jax.distributed import Shard, is_primary, several_processes
from lstm_jax.fit import RUNNER_UP, SELECTED, is_current, run_fit

PHASES = ("search", "fit", "evaluate")  # --phase=all; collect is in search


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


@dataclasses.dataclass(frozen=True)
class Control:
  """What a caller adds to a run: the final fit's progress display (see
  `run_fit`), `stop()`, which ends training at its next segment end, saved
  (see `train_variants`), and this task's share of the search's cells."""

  progress: Callable[[dict], None] | None = None
  stop: Callable[[], bool] | None = None
  shard: Shard = Shard()


def run(data: Dataset, workdir: Path, phase: str = "all",
        control: Control = Control()) -> dict:
  """Runs `phase` (or all phases in order); returns the seconds of each.

  A job of several processes (`jax.distributed`) runs the final fit and the
  evaluation, all processes together; the files every process would write
  alike are written by the first alone. Its search runs as shards (one
  process each, a job array), whose cells `control.shard` chooses."""
  phases = PHASES if phase == "all" else (phase,)
  if several_processes() and {"search", "collect"} & set(phases):
    raise rundir.RunDirError(
        f"--phase={phase} in a job of {jax.process_count()} processes: such "
        "a job runs --phase=fit and --phase=evaluate; run the search as a "
        "job array (--num_shards), one process a task")
  _check_inputs(workdir, phases[0])
  rundir.claim(workdir, identity(data))
  if is_primary():
    rundir.write_json(workdir / "data_summary.json", data.summary())
    rundir.write_json(workdir / "config.json", to_dict(data.config))
  timings_path = workdir / "timings.json"
  for name in phases:
    started = time.perf_counter()
    logging.info("phase %s: starting", name)
    if _PHASE_FUNCTIONS[name](data, workdir, control) and is_primary():
      timings = (rundir.read_json(timings_path) if timings_path.exists()
                 else {})  # read again: other shards may have written it
      timings[name] = round(time.perf_counter() - started, 2)
      rundir.write_json(timings_path, timings)
    logging.info("phase %s: done in %.1fs", name,
                 time.perf_counter() - started)
  return rundir.read_json(timings_path) if timings_path.exists() else {}


# What a phase needs from the phases before it.
_INPUTS = {"collect": ("search", "search"), "fit": ("selected.json", "search"),
           "evaluate": ("checkpoints", "fit")}


def _check_inputs(workdir: Path, phase: str) -> None:
  if phase in _INPUTS:
    name, before = _INPUTS[phase]
    if not (workdir / name).exists():
      raise rundir.RunDirError(
          f"{workdir / name}: missing; run --phase={before} first")


def _search(data: Dataset, workdir: Path, control: Control) -> bool:
  trained = search.run_search(data, workdir, control.stop, control.shard)
  if control.shard.count > 1:
    if data.config.auto_expand:
      logging.warning("--auto_expand works on a whole grid in one task; "
                      "widen it after --phase=collect instead")
    return trained > 0
  for _ in range(data.config.auto_expand):
    selected = rundir.read_json(workdir / "selected.json")
    wider = search.widened(data.config, selected)
    if wider is None:
      break
    logging.info("auto_expand: the winner sits at the grid's edge; searching "
                 "units %s, layers %s", ",".join(map(str, wider.units)),
                 ",".join(map(str, wider.layers)))
    data = dataclasses.replace(data, config=wider)
    trained += search.run_search(data, workdir, control.stop)
  return trained > 0


def _collect(data: Dataset, workdir: Path, control: Control) -> bool:
  del control
  search.collect(data, workdir)
  return True


def _fit(data: Dataset, workdir: Path, control: Control) -> bool:
  """Fits the selected configuration and, with --compare_runner_up, the
  runner-up; a fit done before for the same configuration is kept."""
  trained = False
  if is_current(workdir, SELECTED):
    logging.info("fit of the selected configuration done before, skipped")
  else:
    run_fit(data, workdir, control.progress, stop=control.stop)
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
    run_fit(data, workdir, control.progress, RUNNER_UP, control.stop)
  except rundir.RunDirError as error:  # diverged: the winner's fit stands
    logging.warning("%s; the report compares no runner-up", error)
  return True


def _evaluate(data: Dataset, workdir: Path, control: Control) -> bool:
  """Every process forecasts (seconds, on its own device); the first
  writes the report."""
  del control
  result = evaluate.forecast_test(data, workdir)
  metrics = evaluate.test_metrics(data, result)
  if not is_primary():
    return True
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


_PHASE_FUNCTIONS = {"search": _search, "collect": _collect, "fit": _fit,
                    "evaluate": _evaluate}
