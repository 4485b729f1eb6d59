"""The run's settings: one frozen dataclass, presets, validation, the grid.

Every field of `LSTMConfig` becomes a flag of `experiments.grid`; the help text
of a field lives in its metadata so that flags and docs are written once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from typing import Any, NamedTuple


class ConfigError(ValueError):
  """Settings that cannot work together; the message names the flag."""


def _field(default: Any, help: str, flags: tuple[str, ...] | None = None):
  metadata = {"help": help}
  if flags:
    metadata["flags"] = flags
  return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class LSTMConfig:
  """Search space, windows, training and split settings of one run."""

  units_range: tuple[int, int] = _field(
      (128, 512), "Smallest and largest LSTM width searched.",
      flags=("units_min", "units_max"))
  units_step: int = _field(64, "Step between searched LSTM widths.")
  layers: tuple[int, ...] = _field((1, 2, 3), "Stacked LSTM depths searched.")
  auto_expand: int = _field(
      0, "When the winner sits at the grid's edge (largest or smallest "
      "units, deepest layers), extend the grid that way and search the new "
      "cells, up to this many times.")
  dropouts: tuple[float, ...] = _field(
      (0.0, 0.1, 0.2, 0.3), "Dropout rates; all train at once per cell.")
  sequence_length: int = _field(60, "Input window length in rows.")
  horizon: int = _field(
      1, "Rows forecast at once after each window (direct multi-step: the "
      "head predicts all of them).")
  target: str = _field(
      "level", "What the model forecasts: level (the values), diff (their "
      "changes) or log_return (log ratios; positive series only). Metrics "
      "are always on reconstructed levels.")
  season: int = _field(
      0, "Season length in rows for the seasonal naive baseline (e.g. 24 "
      "for hourly data with a daily cycle); 0: no seasonal baseline.")
  optimization_train_window: int = _field(
      10000, "Search trains on this many last rows of the training split.")
  optimization_val_window: int = _field(
      1000, "Search scores on this many first rows of the validation split.")
  learning_rates: tuple[float, ...] = _field(
      (1e-3,), "Adam learning rates; like --dropouts, all train at once.")
  seeds: tuple[int, ...] = _field(
      (), "Seeds of initialisation and dropout; like --dropouts, all train "
      "at once. Empty: --seed alone.")
  epochs: int = _field(50, "Epochs per search cell and most epochs of the fit.")
  patience: int = _field(
      10, "A variant (search) or the fit stops after this many epochs "
      "without improvement.")
  min_delta: float = _field(
      0.0, "A validation loss must beat the best by more than this to count "
      "as an improvement (early stopping and plateaus).")
  lr_patience: int = _field(
      0, "Epochs without improvement before a variant's learning rate is "
      "multiplied by --lr_factor; 0: never.")
  lr_factor: float = _field(0.5, "Learning-rate reduction factor on plateau.")
  min_learning_rate: float = _field(
      1e-6, "Plateau reductions never go below this learning rate.")
  clip_norm: float = _field(
      0.0, "Clip each step's gradients to this global norm; 0: no clipping.")
  weight_decay: float = _field(
      0.0, "Decoupled weight decay (AdamW); 0: plain Adam.")
  batch_size: int = _field(256, "Windows per training step.")
  chunk_windows: int = _field(
      1 << 20, "Training windows per chunk of the streaming loader (rows on "
      "the device at once: this plus --sequence_length). Part of what "
      "decides the batches, so fixed, never sized to the machine.")
  compare_runner_up: bool = _field(
      True, "Also fit the search's runner-up configuration (the best that "
      "differs from the winner in more than its seed) the same way, and test "
      "whether the winner's test errors are really smaller (Diebold-Mariano). "
      "Costs a second final fit.")
  seed: int = _field(
      0, "Seed of batch order, and of initialisation and dropout unless "
      "--seeds is given.")
  checkpoint_steps: int = _field(
      5000, "Training saves a resumable checkpoint after this many steps "
      "(the fit at the next segment end, a search cell at the next epoch "
      "end).")
  checkpoint_minutes: float = _field(
      10.0, "It also saves one after this many minutes, whichever comes "
      "first.")
  segment_steps: int = _field(
      0, "Training steps per dispatch; 0: as many as take about a second. "
      "Never changes results.")
  train_fraction: float = _field(0.7, "Share of rows in the training split.")
  val_fraction: float = _field(0.15, "Share of rows in the validation split.")
  test_fraction: float = _field(0.15, "Share of rows in the test split.")
  train_rows: int = _field(
      0, "Rows in the training split; > 0 replaces the fractions.")
  val_rows: int = _field(0, "Rows in the validation split (with --train_rows).")
  test_rows: int = _field(
      0, "Rows in the test split (with --train_rows); 0: all that remain.")

  @property
  def units(self) -> tuple[int, ...]:
    low, high = self.units_range
    return tuple(range(low, high + 1, self.units_step))


PRESETS: dict[str, dict[str, Any]] = {
    "conservative": {},
    "aggressive": dict(
        units_range=(256, 1024), optimization_train_window=20000,
        optimization_val_window=2000, epochs=100),
    "ultra_conservative": dict(
        units_range=(64, 256), optimization_train_window=5000,
        optimization_val_window=500),
    # Small enough for a laptop CPU in about two minutes, end to end.
    "demo": dict(
        units_range=(16, 32), units_step=16, layers=(1, 2),
        sequence_length=24, optimization_train_window=2000,
        optimization_val_window=400, epochs=8, patience=3, batch_size=64,
        learning_rates=(3e-3,)),
}

TARGETS = ("level", "diff", "log_return")

# Settings that change how fast a run goes or which part of the grid it
# covers, never what a result means: they are not part of a run directory's
# identity, so a grid can be widened in place (finished cells are reused).
NON_IDENTITY_FIELDS = ("segment_steps", "units_range", "units_step", "layers",
                       "auto_expand", "checkpoint_steps", "checkpoint_minutes",
                       "compare_runner_up")

# Settings that only decide how a window is sized to the data, and so may be
# shrunk to fit when they were not given explicitly.
WINDOW_FIELDS = ("optimization_train_window", "optimization_val_window")


def make_config(preset: str = "conservative", **overrides: Any) -> LSTMConfig:
  """The preset's values, then `overrides`, validated."""
  if preset not in PRESETS:
    raise ConfigError(
        f"--preset={preset!r} is unknown; choose one of {', '.join(PRESETS)}")
  values = {**PRESETS[preset], **overrides}
  config = LSTMConfig(**values)
  validate(config)
  return config


def validate(config: LSTMConfig) -> None:
  """Raises ConfigError on the first setting that cannot work."""
  low, high = config.units_range
  checks = [
      (low >= 1, f"--units_min={low} must be at least 1"),
      (low <= high, f"--units_min={low} is larger than --units_max={high}"),
      (config.units_step >= 1,
       f"--units_step={config.units_step} must be at least 1"),
      (bool(config.layers), "--layers is empty; give e.g. --layers=1,2"),
      (all(n >= 1 for n in config.layers),
       f"--layers={_csv(config.layers)}: every depth must be at least 1"),
      (len(set(config.layers)) == len(config.layers),
       f"--layers={_csv(config.layers)} repeats a depth"),
      (bool(config.dropouts), "--dropouts is empty; give e.g. --dropouts=0,0.2"),
      (len(set(config.dropouts)) == len(config.dropouts),
       f"--dropouts={_csv(config.dropouts)} repeats a rate"),
      (all(0.0 <= d < 1.0 for d in config.dropouts),
       f"--dropouts={_csv(config.dropouts)}: each rate must lie in [0, 1)"),
      (config.sequence_length >= 1,
       f"--sequence_length={config.sequence_length} must be at least 1"),
      (config.horizon >= 1, f"--horizon={config.horizon} must be at least 1"),
      (config.target in TARGETS,
       f"--target={config.target} is unknown; choose one of "
       f"{', '.join(TARGETS)}"),
      (config.season >= 0, f"--season={config.season} must be 0 (none) or "
       "more"),
      (config.optimization_train_window >= 1,
       "--optimization_train_window must be at least 1"),
      (config.optimization_val_window >= 1,
       "--optimization_val_window must be at least 1"),
      (config.epochs >= 1, f"--epochs={config.epochs} must be at least 1"),
      (config.patience >= 1, f"--patience={config.patience} must be at least 1"),
      (config.segment_steps >= 0,
       f"--segment_steps={config.segment_steps} must be 0 (auto) or more"),
      (config.auto_expand >= 0,
       f"--auto_expand={config.auto_expand} must be 0 (off) or more"),
      (config.chunk_windows >= 1,
       f"--chunk_windows={config.chunk_windows} must be at least 1"),
      (config.batch_size >= 1,
       f"--batch_size={config.batch_size} must be at least 1"),
      (bool(config.learning_rates),
       "--learning_rates is empty; give e.g. --learning_rates=1e-3"),
      (all(0 < r < math.inf for r in config.learning_rates),
       f"--learning_rates={_csv(config.learning_rates)}: each must be "
       "positive and finite"),
      (len(set(config.learning_rates)) == len(config.learning_rates),
       f"--learning_rates={_csv(config.learning_rates)} repeats a rate"),
      (len(set(config.seeds)) == len(config.seeds),
       f"--seeds={_csv(config.seeds)} repeats a seed"),
      (all(0 <= s < 2**32 for s in (config.seed, *config.seeds)),
       "--seed and --seeds must lie in [0, 2**32)"),
      (config.min_delta >= 0, f"--min_delta={config.min_delta} must not be "
       "negative"),
      (config.lr_patience >= 0,
       f"--lr_patience={config.lr_patience} must be 0 (off) or more"),
      (0 < config.lr_factor < 1,
       f"--lr_factor={config.lr_factor} must lie in (0, 1)"),
      (config.min_learning_rate >= 0,
       f"--min_learning_rate={config.min_learning_rate} must not be negative"),
      (config.clip_norm >= 0,
       f"--clip_norm={config.clip_norm} must be 0 (off) or positive"),
      (config.weight_decay >= 0,
       f"--weight_decay={config.weight_decay} must be 0 (off) or positive"),
      (config.checkpoint_steps >= 1,
       f"--checkpoint_steps={config.checkpoint_steps} must be at least 1"),
      (config.checkpoint_minutes > 0,
       f"--checkpoint_minutes={config.checkpoint_minutes} must be positive"),
  ]
  checks += _split_checks(config)
  for ok, message in checks:
    if not ok:
      raise ConfigError(message)


def _split_checks(config: LSTMConfig) -> list[tuple[bool, str]]:
  if min(config.train_rows, config.val_rows, config.test_rows) < 0:
    return [(False, "--train_rows, --val_rows and --test_rows must not be "
             "negative")]
  if config.train_rows > 0 or config.val_rows > 0 or config.test_rows > 0:
    return [
        (config.train_rows > 0 and config.val_rows > 0,
         "--train_rows and --val_rows must both be given (> 0) to split by "
         "row counts"),
        (config.test_rows >= 0, "--test_rows must not be negative"),
    ]
  fractions = (config.train_fraction, config.val_fraction, config.test_fraction)
  return [
      (all(0 < f < 1 for f in fractions),
       "--train_fraction, --val_fraction and --test_fraction must each lie "
       "in (0, 1)"),
      (abs(sum(fractions) - 1.0) < 1e-9,
       f"--train_fraction, --val_fraction and --test_fraction sum to "
       f"{sum(fractions):g}; make them sum to 1"),
  ]


def _csv(values) -> str:
  return ",".join(str(v) for v in values)


def architectures(config: LSTMConfig) -> list[tuple[int, int]]:
  """The grid's cells, (units, layers), in search order."""
  return [(u, n) for u in config.units for n in config.layers]


class Variant(NamedTuple):
  """What the variants of one cell may differ in; they share array shapes."""

  dropout: float
  learning_rate: float
  seed: int


def variants(config: LSTMConfig) -> list[Variant]:
  """The variants trained together in every cell, in table order."""
  seeds = config.seeds or (config.seed,)
  return [Variant(d, r, s) for d in config.dropouts
          for r in config.learning_rates for s in seeds]


def shrink_windows(
    config: LSTMConfig, max_train: int, max_val: int, explicit: frozenset[str]
) -> tuple[LSTMConfig, list[str]]:
  """Shrinks default optimization windows to the rows there are.

  Returns the adjusted config and one note per shrunk window. A window given
  explicitly that does not fit raises ConfigError instead.
  """
  notes, changes = [], {}
  for name, limit, split in zip(
      WINDOW_FIELDS, (max_train, max_val), ("training", "validation"), strict=True
  ):
    value = getattr(config, name)
    if value <= limit:
      continue
    if name in explicit:
      raise ConfigError(
          f"--{name}={value} does not fit: the {split} split has room for "
          f"{limit} windows; lower it or omit it to fit automatically")
    changes[name] = limit
    notes.append(f"{name} shrunk from {value} to {limit} to fit the {split} "
                 "split")
  return dataclasses.replace(config, **changes), notes


def to_dict(config: LSTMConfig) -> dict[str, Any]:
  return dataclasses.asdict(config)


def from_dict(values: dict[str, Any]) -> LSTMConfig:
  """Inverse of `to_dict`, after a trip through JSON (lists to tuples)."""
  fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
  return LSTMConfig(**fixed)


def fingerprint(values: dict[str, Any]) -> str:
  """A short stable hash of JSON-able settings."""
  text = json.dumps(values, sort_keys=True)
  return hashlib.sha256(text.encode()).hexdigest()[:16]
