"""The final fit: the selected configuration on the whole training split."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
from absl import logging

from lstm_jax import rundir
from lstm_jax.checkpoint import save_model
from lstm_jax.config import to_dict
from lstm_jax.data import Dataset
from lstm_jax.model import LSTMForecaster
from lstm_jax.train import train_variants, unstack

SUMMARY_FILE = "fit_summary.json"


def run_fit(data: Dataset, workdir: Path) -> dict:
  """Trains with early stopping on the validation split; saves the best."""
  path = workdir / "selected.json"
  if not path.exists():
    raise rundir.RunDirError(f"{path}: missing; run --phase=search first")
  selected = rundir.read_json(path)
  config = data.config
  model = LSTMForecaster(selected["units"], selected["layers"])
  train_starts, val_starts = data.fit_windows()

  def log_epoch(record):
    logging.info("fit epoch %d: train_loss %s val_loss %s (%.1fs)",
                 record["epoch"], _loss(record["train_loss"][0]),
                 _loss(record["val_loss"][0]), record["seconds"])

  result = train_variants(
      model, jax.device_put(data.scaled), train_starts, val_starts,
      np.array([selected["dropout"]]), seed=config.seed,
      learning_rate=config.learning_rate, batch_size=config.batch_size,
      length=config.sequence_length, epochs=config.epochs,
      patience=config.patience, segment_steps=config.segment_steps,
      on_epoch=log_epoch)
  if result.best_epoch[0] == 0:
    raise rundir.RunDirError(
        f"{workdir}: the final fit diverged in epoch "
        f"{result.diverged_epoch[0]}; lower --learning_rate")
  summary = dict(
      units=selected["units"], layers=selected["layers"],
      dropout=selected["dropout"], train_windows=len(train_starts),
      val_windows=len(val_starts), best_epoch=int(result.best_epoch[0]),
      best_val_loss=float(result.best_val_loss[0]),
      train_loss_at_best=float(result.train_loss_at_best[0]),
      epochs_run=int(result.epochs_run[0]), status=result.status[0],
      seconds=round(result.seconds, 3),
      compile_seconds=round(result.compile_seconds, 3),
      history=[dict(epoch=h["epoch"], train_loss=h["train_loss"][0],
                    val_loss=h["val_loss"][0]) for h in result.history])
  meta = dict(
      units=selected["units"], layers=selected["layers"],
      dropout=selected["dropout"], horizon=1,
      sequence_length=config.sequence_length,
      scaler=dict(mean=data.scaler.mean, std=data.scaler.std),
      column=data.series.name, config=to_dict(config),
      best_epoch=summary["best_epoch"], best_val_loss=summary["best_val_loss"])
  save_model(workdir / "checkpoints", unstack(result.best_params, 0), meta)
  rundir.write_json(workdir / SUMMARY_FILE, summary)
  return summary


def _loss(value: float | None) -> str:
  return "diverged" if value is None else f"{value:.5f}"
