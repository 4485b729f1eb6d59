"""The grid search: one vmapped program per (units, layers) cell.

Each finished cell is one JSON file under `search/`, written atomically, so a
re-run skips what is done and a table can be collected at any time. A cell
in progress checkpoints its training loop at an epoch end once
`--checkpoint_steps` steps or `--checkpoint_minutes` minutes have passed, so
a killed one resumes from there.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np
from absl import logging

from lstm_jax import rundir
from lstm_jax.checkpoint import LoopCheckpoints
from lstm_jax.config import architectures, variants
from lstm_jax.data import Dataset
from lstm_jax.distributed import Placement, Shard, cells_of
from lstm_jax.model import (
    LSTMForecaster,
    parameter_count,
    train_flops_per_window,
)
from lstm_jax.train import train_variants, unstack

TABLE_COLUMNS = [
    "units", "layers", "dropout", "learning_rate", "seed", "val_loss",
    "train_loss", "status", "diverged_epoch", "best_epoch", "epochs_run",
    "final_learning_rate",
    "seconds", "compile_seconds", "parameters", "samples_per_parameter",
]
# What tells the configurations of a table apart.
CONFIG_KEYS = ("units", "layers", "dropout", "learning_rate", "seed")


def cell_path(workdir: Path, units: int, layers: int) -> Path:
  return workdir / "search" / f"cell_u{units}_l{layers}.json"


def state_path(workdir: Path, units: int, layers: int) -> Path:
  """Where an unfinished cell keeps its checkpoints."""
  return workdir / "search" / f"state_u{units}_l{layers}"


def run_cell(data: Dataset, units: int, layers: int, workdir: Path,
             stop: Callable[[], bool] | None = None) -> list[dict]:
  """Trains every variant of one cell, resuming from its last checkpoint;
  writes and returns one result row per variant. `stop`: see
  `train_variants`."""
  config = data.config
  loader, val = data.search_data()
  model = LSTMForecaster(units, layers, config.horizon)
  cell_variants = variants(config)
  placement = Placement.choose(len(cell_variants), config.batch_size)
  if state_path(workdir, units, layers).exists():
    logging.info("cell units=%d layers=%d: resuming", units, layers)
  checkpoints = LoopCheckpoints(
      state_path(workdir, units, layers), every_steps=config.checkpoint_steps,
      every_seconds=config.checkpoint_minutes * 60, epoch_ends_only=True)
  try:
    result = train_variants(model, loader, val, cell_variants, config,
                            checkpoints=checkpoints, stop=stop,
                            placement=placement)
  except BaseException:
    checkpoints.close()
    raise
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


def run_search(data: Dataset, workdir: Path,
               stop: Callable[[], bool] | None = None,
               shard: Shard | None = None) -> int:
  """Runs every cell of this `shard` not yet on disk; collects the table
  once every cell of the grid is there (so the last shard to finish does).
  Returns how many cells it trained. `stop`: see `train_variants`."""
  cells, trained, shard = architectures(data.config), 0, shard or Shard()
  mine = set(cells_of(cells, shard))
  for index, (units, layers) in enumerate(cells, 1):
    if (units, layers) not in mine:
      continue
    path = cell_path(workdir, units, layers)
    if path.exists():
      # Checkpoints left by a run stopped between the two writes.
      shutil.rmtree(state_path(workdir, units, layers), ignore_errors=True)
      logging.info("cell %d/%d units=%d layers=%d: done before, skipped",
                   index, len(cells), units, layers)
      continue
    rows = run_cell(data, units, layers, workdir, stop)
    trained += 1
    best = min(rows, key=lambda r: _sort_key(r["val_loss"]))
    logging.info(
        "cell %d/%d units=%d layers=%d: best val_loss %.5f (dropout %g, "
        "learning rate %g, seed %d), %.1fs (%.1fs compiling)", index,
        len(cells), units, layers, best["val_loss"], best["dropout"],
        best["learning_rate"], best["seed"], best["seconds"],
        best["compile_seconds"])
  # Each shard writes its cells before it looks, so the last one sees all;
  # two that collect at once write the same table, each file atomically.
  left = [c for c in cells if not cell_path(workdir, *c).exists()]
  if left:
    logging.info("shard %d/%d done; %d cells of other shards to go (the "
                 "last shard to finish collects, or run --phase=collect)",
                 shard.index, shard.count, len(left))
  else:
    collect(data, workdir)
  return trained


CHECKS_FILE = "search_checks.json"
RUNNER_UP_FILE = "runner_up.json"
SEED_TABLE = "search_seeds.csv"
SEED_COLUMNS = ["units", "layers", "dropout", "learning_rate", "seeds",
                "val_loss_mean", "val_loss_std", "val_loss_min",
                "val_loss_max"]


def collect(data: Dataset, workdir: Path) -> list[dict]:
  """Writes the table sorted by validation loss, the selected config, the
  checks on the grid (settings with no effect, a winner at the grid's edge)
  and, with several seeds, each configuration's spread over them."""
  config = data.config
  rows = []
  for units, layers in architectures(config):
    path = cell_path(workdir, units, layers)
    if not path.exists():
      raise rundir.RunDirError(
          f"{path}: missing; run --phase=search to finish the grid")
    cell = rundir.read_json(path)
    if not (isinstance(cell, list) and cell):
      raise rundir.RunDirError(
          f"{path}: damaged, holds no results; delete it to search that "
          "cell again")
    rows += cell
  windows = data.search_data()[0].windows
  for row in rows:
    row["samples_per_parameter"] = round(windows / row["parameters"], 3)
  rows.sort(key=lambda r: (_sort_key(r["val_loss"]), r["units"], r["layers"]))
  rundir.write_csv(workdir / "search_results.csv", rows, TABLE_COLUMNS)
  selected = select(rows)
  rundir.write_json(workdir / "selected.json", selected)
  runner_up = select_runner_up(rows, selected)
  if runner_up is None:
    (workdir / RUNNER_UP_FILE).unlink(missing_ok=True)
  else:
    rundir.write_json(workdir / RUNNER_UP_FILE, runner_up)
  if len(set(variants(config))) > len({(v.dropout, v.learning_rate)
                                       for v in variants(config)}):
    rundir.write_csv(workdir / SEED_TABLE, seed_spread(rows), SEED_COLUMNS)
  notes = no_effect(rows) + at_the_edge(selected, config)
  for note in notes:
    logging.warning("%s", note)
  rundir.write_json(workdir / CHECKS_FILE, notes)
  return rows


def seed_spread(rows: list[dict]) -> list[dict]:
  """Each configuration's validation loss over its seeds, best mean first."""
  groups: dict[tuple, list[float]] = {}
  for r in rows:
    key = (r["units"], r["layers"], r["dropout"], r["learning_rate"])
    groups.setdefault(key, []).append(r["val_loss"])
  out = []
  for (units, layers, dropout, rate), losses in groups.items():
    values = np.asarray(losses)
    out.append(dict(
        units=units, layers=layers, dropout=dropout, learning_rate=rate,
        seeds=len(losses), val_loss_mean=float(values.mean()),
        val_loss_std=float(values.std(ddof=1)) if len(losses) > 1 else 0.0,
        val_loss_min=float(values.min()), val_loss_max=float(values.max())))
  out.sort(key=lambda r: _sort_key(r["val_loss_mean"]))
  return out


def no_effect(rows: list[dict]) -> list[str]:
  """Variants of one cell whose results are identical to the last digit:
  the setting they differ in changed nothing there."""
  notes = []
  cells: dict[tuple, list[dict]] = {}
  for r in rows:
    cells.setdefault((r["units"], r["layers"]), []).append(r)
  for (units, layers), cell in sorted(cells.items()):
    seen: dict[tuple, dict] = {}
    for r in cell:
      result = (r["val_loss"], r["train_loss"], r["best_epoch"])
      if result in seen:
        other = seen[result]
        changed = [k for k in ("dropout", "learning_rate", "seed")
                   if r[k] != other[k]]
        notes.append(
            f"units={units} layers={layers}: "
            + ", ".join(f"{k} {other[k]} and {r[k]}" for k in changed)
            + " gave identical results; that setting had no effect there")
      else:
        seen[result] = r
  return notes


def at_the_edge(selected: dict, config) -> list[str]:
  """A warning when the winner's size or depth is the largest or smallest
  the grid tried (and the grid tried more than one)."""
  notes = []
  units, layers = config.units, sorted(config.layers)
  if len(units) > 1 and selected["units"] == units[-1]:
    notes.append(f"best units = {units[-1]} is the largest tried; try "
                 f"--units_max={units[-1] + config.units_step}")
  lower = _below(units[0], config.units_step)
  if len(units) > 1 and selected["units"] == units[0] and lower:
    notes.append(f"best units = {units[0]} is the smallest tried; try "
                 f"--units_min={lower}" + (
                     "" if lower == units[0] - config.units_step else
                     f" --units_step={units[0] - lower}"))
  if len(layers) > 1 and selected["layers"] == layers[-1]:
    notes.append(f"best layers = {layers[-1]} is the deepest tried; try "
                 f"--layers={','.join(map(str, layers + [layers[-1] + 1]))}")
  return notes


def _sort_key(loss: float) -> float:
  return loss if math.isfinite(loss) else math.inf


_SELECTED_KEYS = (*CONFIG_KEYS, "val_loss", "train_loss", "best_epoch",
                  "parameters")


def select(rows: list[dict]) -> dict:
  """The configuration with the lowest validation loss (`rows` sorted)."""
  best = rows[0]
  if not math.isfinite(best["val_loss"]):
    raise rundir.RunDirError(
        "every configuration diverged; lower --learning_rates")
  return {k: best[k] for k in _SELECTED_KEYS}


def select_runner_up(rows: list[dict], selected: dict) -> dict | None:
  """The best of `rows` (sorted) that differs from `selected` in more than
  its seed (another seed is the same configuration); None when none does."""
  setting = ("units", "layers", "dropout", "learning_rate")
  for row in rows:
    if (math.isfinite(row["val_loss"])
        and any(row[k] != selected[k] for k in setting)):
      return {k: row[k] for k in _SELECTED_KEYS}
  return None


def _below(smallest: int, step: int) -> int:
  """The next width below the grid: a step down, or half when a step would
  reach zero; 0 when there is none."""
  return smallest - step if smallest > step else smallest // 2


def widened(config, selected: dict):
  """The config with its grid extended past the edge the winner sits at,
  or None when it sits at none."""
  units, layers = config.units, sorted(config.layers)
  low, high = config.units_range
  if len(units) > 1 and selected["units"] == units[-1]:
    return dataclasses.replace(config,
                               units_range=(low, units[-1] + config.units_step))
  if len(layers) > 1 and selected["layers"] == layers[-1]:
    return dataclasses.replace(config, layers=(*config.layers, layers[-1] + 1))
  lower = _below(units[0], config.units_step)
  if len(units) > 1 and selected["units"] == units[0] and lower:
    # A step that keeps the old widths on the grid: a divisor of the gap.
    return dataclasses.replace(config, units_range=(lower, high),
                               units_step=math.gcd(units[0] - lower,
                                                   config.units_step))
  return None


def plan(data: Dataset, matmul_flops: float) -> list[dict]:
  """What the search would do, cell by cell, without training: exact
  parameter counts, windows, FLOPs, the time at `matmul_flops` FLOP/s (a
  measured rate of the device), and an estimate of the device memory of
  the cell's program."""
  c = data.config
  count = len(variants(c))
  loader, val = data.search_data()
  rows = []
  for units, layers in architectures(c):
    model = LSTMForecaster(units, layers, c.horizon)
    shapes = jax.eval_shape(model.init, jax.random.key(0), jax.ShapeDtypeStruct(
        (1, c.sequence_length, data.features), np.float32))["params"]
    params = parameter_count(shapes)
    flops = (train_flops_per_window(units, layers, c.sequence_length,
                                     data.features)
             * loader.windows * c.epochs * count)
    # Parameters, gradients, two Adam moments and the best copy, per variant;
    # the scan's saved gates and states for the backward pass; the chunk.
    state = 5 * params * count * 4
    activations = (c.batch_size * c.sequence_length * layers * 6 * units
                   * count * 4)
    rows.append(dict(
        units=units, layers=layers, variants=count, parameters=params,
        samples_per_parameter=round(loader.windows / params, 3),
        windows=loader.windows, gflops=flops / 1e9,
        seconds_at_least=flops / matmul_flops,
        device_mb=(state + activations + loader.chunk_rows * data.features * 4
                   + val.rows.nbytes) / 2**20))
  return rows
