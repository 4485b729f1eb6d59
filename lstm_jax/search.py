"""The grid search: one vmapped program per (units, layers) cell.

Each finished cell is one JSON file under `search/`, written atomically, so a
re-run skips what is done and a table can be collected at any time. A cell
in progress checkpoints its training loop at an epoch end once
`--checkpoint_steps` steps or `--checkpoint_minutes` minutes have passed, so
a killed one resumes from there.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from absl import logging

from lstm_jax import rundir
from lstm_jax.checkpoint import LoopCheckpoints
from lstm_jax.config import architectures, variants
from lstm_jax.data import Dataset
from lstm_jax.model import LSTMForecaster, parameter_count
from lstm_jax.train import train_variants, unstack

TABLE_COLUMNS = [
    "units", "layers", "dropout", "learning_rate", "seed", "val_loss",
    "train_loss", "status", "best_epoch", "epochs_run", "final_learning_rate",
    "seconds", "compile_seconds", "parameters",
]
# What tells the configurations of a table apart.
CONFIG_KEYS = ("units", "layers", "dropout", "learning_rate", "seed")


def cell_path(workdir: Path, units: int, layers: int) -> Path:
  return workdir / "search" / f"cell_u{units}_l{layers}.json"


def state_path(workdir: Path, units: int, layers: int) -> Path:
  """Where an unfinished cell keeps its checkpoints."""
  return workdir / "search" / f"state_u{units}_l{layers}"


def run_cell(data: Dataset, units: int, layers: int,
             workdir: Path) -> list[dict]:
  """Trains every variant of one cell, resuming from its last finished
  epoch; writes and returns one result row per variant."""
  config = data.config
  loader, val = data.search_data()
  model = LSTMForecaster(units, layers, config.horizon)
  cell_variants = variants(config)
  if state_path(workdir, units, layers).exists():
    logging.info("cell units=%d layers=%d: resuming", units, layers)
  checkpoints = LoopCheckpoints(
      state_path(workdir, units, layers), every_steps=config.checkpoint_steps,
      every_seconds=config.checkpoint_minutes * 60, epoch_ends_only=True)
  result = train_variants(model, loader, val, cell_variants, config,
                          checkpoints=checkpoints)
  params = parameter_count(unstack(result.best_params, 0))
  rows = [
      dict(units=units, layers=layers, dropout=v.dropout,
           learning_rate=v.learning_rate, seed=v.seed,
           val_loss=float(result.best_val_loss[k]),
           train_loss=float(result.train_loss_at_best[k]),
           best_epoch=int(result.best_epoch[k]),
           epochs_run=int(result.epochs_run[k]),
           status=result.status[k],
           diverged_epoch=int(result.diverged_epoch[k]),
           final_learning_rate=float(f"{result.final_learning_rate[k]:.6g}"),
           seconds=round(result.seconds, 3),
           compile_seconds=round(result.compile_seconds, 3),
           parameters=params,
           history=[dict(epoch=h["epoch"], train_loss=h["train_loss"][k],
                         val_loss=h["val_loss"][k]) for h in result.history])
      for k, v in enumerate(cell_variants)
  ]
  rundir.write_json(cell_path(workdir, units, layers), rows)
  checkpoints.remove()
  return rows


def run_search(data: Dataset, workdir: Path) -> int:
  """Runs every cell not yet on disk, then collects the table; returns how
  many cells it trained."""
  cells, trained = architectures(data.config), 0
  for index, (units, layers) in enumerate(cells, 1):
    path = cell_path(workdir, units, layers)
    if path.exists():
      # Checkpoints left by a run stopped between the two writes.
      shutil.rmtree(state_path(workdir, units, layers), ignore_errors=True)
      logging.info("cell %d/%d units=%d layers=%d: done before, skipped",
                   index, len(cells), units, layers)
      continue
    rows = run_cell(data, units, layers, workdir)
    trained += 1
    best = min(rows, key=lambda r: _sort_key(r["val_loss"]))
    logging.info(
        "cell %d/%d units=%d layers=%d: best val_loss %.5f (dropout %g, "
        "learning rate %g, seed %d), %.1fs (%.1fs compiling)", index,
        len(cells), units, layers, best["val_loss"], best["dropout"],
        best["learning_rate"], best["seed"], best["seconds"],
        best["compile_seconds"])
  collect(data, workdir)
  return trained


def collect(data: Dataset, workdir: Path) -> list[dict]:
  """Writes the table sorted by validation loss and the selected config."""
  rows = []
  for units, layers in architectures(data.config):
    path = cell_path(workdir, units, layers)
    if not path.exists():
      raise rundir.RunDirError(
          f"{path}: missing; run --phase=search to finish the grid")
    rows += rundir.read_json(path)
  rows.sort(key=lambda r: (_sort_key(r["val_loss"]), r["units"], r["layers"]))
  rundir.write_csv(workdir / "search_results.csv", rows, TABLE_COLUMNS)
  rundir.write_json(workdir / "selected.json", select(rows))
  return rows


def _sort_key(loss: float) -> float:
  return loss if math.isfinite(loss) else math.inf


def select(rows: list[dict]) -> dict:
  """The configuration with the lowest validation loss."""
  best = rows[0]
  if not math.isfinite(best["val_loss"]):
    raise rundir.RunDirError(
        "every configuration diverged; lower --learning_rates")
  keys = (*CONFIG_KEYS, "val_loss", "train_loss", "best_epoch", "parameters")
  return {k: best[k] for k in keys}
