"""The final fit: the selected configuration on the whole training split.

Training windows stream from the series in chunks (`WindowLoader`); only
the validation split's rows are held whole. The training loop checkpoints
every `--checkpoint_steps` steps and every `--checkpoint_minutes` minutes
(at the next segment end) with its position in the epoch, so a killed fit
resumes where its last checkpoint left it and ends as it would have.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import jax
from absl import logging

from lstm_jax import rundir
from lstm_jax.checkpoint import LoopCheckpoints, save_model
from lstm_jax.config import Variant, fingerprint, to_dict
from lstm_jax.data import Dataset
from lstm_jax.distributed import Placement, barrier, is_primary
from lstm_jax.model import LSTMForecaster
from lstm_jax.search import CONFIG_KEYS
from lstm_jax.train import train_variants, unstack


class FitFiles(NamedTuple):
  """Where one final fit finds its configuration and writes its results,
  relative to the run directory."""

  selection: str  # the configuration to fit, written by the search
  checkpoints: str  # the trained model (`load_model`)
  summary: str
  metrics: str  # one JSON line per epoch
  state: str  # the training loop's checkpoints while it runs


SELECTED = FitFiles("selected.json", "checkpoints", "fit_summary.json",
                    "fit_metrics.jsonl", "fit_state")
# The search's second-best configuration, fitted alike to test the winner.
RUNNER_UP = FitFiles("runner_up.json", "checkpoints_runner_up",
                     "fit_summary_runner_up.json",
                     "fit_metrics_runner_up.jsonl", "fit_state_runner_up")
SUMMARY_FILE = SELECTED.summary
METRICS_FILE = SELECTED.metrics


def is_current(workdir: Path, files: FitFiles = SELECTED) -> bool:
  """Whether the saved fit is of the configuration selected now (a widened
  grid may have selected another)."""
  path, selection = workdir / files.summary, workdir / files.selection
  checkpoints = workdir / files.checkpoints
  if not (path.exists() and selection.exists() and checkpoints.is_dir()
          and any(checkpoints.iterdir())):  # a deleted checkpoint: fit again
    return False
  fitted, selected = rundir.read_json(path), rundir.read_json(selection)
  return all(fitted.get(k) == selected[k] for k in CONFIG_KEYS)


def run_fit(data: Dataset, workdir: Path,
            progress: Callable[[dict], None] | None = None,
            files: FitFiles = SELECTED,
            stop: Callable[[], bool] | None = None) -> dict:
  """Trains with early stopping on the validation split; saves the best.

  `progress`, when given, receives dicts (name, epoch, epochs, step, steps,
  batch_size, loss: the epoch's mean training loss so far) after every
  training segment, for a display. `files` says which configuration is
  fitted (the selected one or the runner-up) and where results go. When
  `stop()` turns true, the fit saves where it stands and raises
  train.Interrupted.

  Each step's batch is split over every device (of every process, in a
  job of several): each process streams its own columns of the batches.
  """
  path = workdir / files.selection
  if not path.exists():
    raise rundir.RunDirError(f"{path}: missing; run --phase=search first")
  selected = rundir.read_json(path)
  config = data.config
  model = LSTMForecaster(selected["units"], selected["layers"],
                         config.horizon)
  variant = Variant(selected["dropout"], selected["learning_rate"],
                    selected["seed"])
  placement = Placement.choose(1, config.batch_size, jax.devices(),
                               allow_variants=False)
  shard = ((jax.process_index(), jax.process_count())
           if placement.split == "batch" else (0, 1))
  loader, val = data.fit_data(shard)
  if placement.devices > 1:
    logging.info("fit: batches of %d split over %d devices (%d processes)",
                 config.batch_size, placement.devices, jax.process_count())

  label = "" if files == SELECTED else " (runner-up)"

  def log_epoch(history):
    record = history[-1]
    logging.info("fit%s epoch %d: train_loss %s val_loss %s (%.1fs)",
                 label, record["epoch"], _loss(record["train_loss"][0]),
                 _loss(record["val_loss"][0]), record["seconds"])
    if not is_primary():
      return
    # Rewritten whole from the history, which a resumed run carries over.
    rundir.write_atomic(workdir / files.metrics, "".join(
        json.dumps(dict(epoch=h["epoch"], train_loss=h["train_loss"][0],
                        val_loss=h["val_loss"][0],
                        learning_rate=h["learning_rate"][0],
                        seconds=round(h["seconds"], 3))) + "\n"
        for h in history))

  steps = sum(loader.batches_of(c) for c in range(loader.chunks))

  def on_progress(epoch, step, loss):
    if progress:
      progress(dict(name=f"fit{label}", epoch=epoch + 1,
                    epochs=config.epochs, step=step, steps=steps,
                    batch_size=config.batch_size, loss=loss))

  # One directory per selection: a fit of an earlier selection (before the
  # grid was widened) is never resumed as this one.
  states = workdir / files.state
  key = fingerprint({k: selected[k] for k in CONFIG_KEYS})
  for stale in states.glob("*") if is_primary() else ():
    if stale.name != key:
      shutil.rmtree(stale, ignore_errors=True)
  barrier("fit: stale states removed")
  if (states / key).exists():
    logging.info("fit%s: resuming from its last checkpoint", label)
  checkpoints = LoopCheckpoints(
      states / key, keep=3, every_steps=config.checkpoint_steps,
      every_seconds=config.checkpoint_minutes * 60)
  try:
    result = train_variants(
        model, loader, val, [variant], config, checkpoints=checkpoints,
        on_epoch=log_epoch, on_progress=on_progress, stop=stop,
        placement=placement)
  finally:
    checkpoints.close()
  if result.best_epoch[0] == 0:
    raise rundir.RunDirError(
        f"{workdir}: the final fit{label} diverged in epoch "
        f"{result.diverged_epoch[0]}; lower --learning_rates")
  picked = {k: selected[k] for k in CONFIG_KEYS}
  summary = dict(
      **picked, train_windows=loader.windows, val_windows=len(val.starts),
      parameters=selected["parameters"],
      samples_per_parameter=round(loader.windows / selected["parameters"], 3),
      chunks=loader.chunks,
      best_epoch=int(result.best_epoch[0]),
      best_val_loss=float(result.best_val_loss[0]),
      train_loss_at_best=float(result.train_loss_at_best[0]),
      epochs_run=int(result.epochs_run[0]), status=result.status[0],
      final_learning_rate=float(f"{result.final_learning_rate[0]:.6g}"),
      seconds=round(result.seconds, 3),
      compile_seconds=round(result.compile_seconds, 3),
      history=[dict(epoch=h["epoch"], train_loss=h["train_loss"][0],
                    val_loss=h["val_loss"][0],
                    learning_rate=float(f"{h['learning_rate'][0]:.6g}"))
               for h in result.history])
  meta = dict(
      **picked, horizon=config.horizon, target=config.target,
      sequence_length=config.sequence_length,
      scaler=data.scaler.to_dict(), column=data.series.name,
      features=list(data.series.names), config=to_dict(config),
      best_epoch=summary["best_epoch"], best_val_loss=summary["best_val_loss"])
  save_model(workdir / files.checkpoints, unstack(result.best_params, 0), meta)
  barrier("fit: model saved")
  if is_primary():
    rundir.write_json(workdir / files.summary, summary)
    shutil.rmtree(states, ignore_errors=True)
  return summary


def _loss(value: float | None) -> str:
  return "diverged" if value is None else f"{value:.5f}"
