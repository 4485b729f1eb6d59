"""Orbax checkpoints of a trained model that restore without the command.

Beside the parameters each checkpoint holds, as JSON, everything needed to
use them: the architecture, window length, scaler and the run's settings.
"""

from __future__ import annotations

from pathlib import Path

import orbax.checkpoint as ocp

from lstm_jax.rundir import RunDirError


def save_model(directory: Path, params, meta: dict) -> None:
  """Saves a model as the newest checkpoint; older ones go once it is
  complete (a refit after a widened grid replaces the previous model)."""
  options = ocp.CheckpointManagerOptions(max_to_keep=1)
  with ocp.CheckpointManager(directory.absolute(), options=options) as manager:
    step = (manager.latest_step() or 0) + 1
    manager.save(step, args=ocp.args.Composite(
        params=ocp.args.StandardSave(params),
        meta=ocp.args.JsonSave(meta)), force=True)
    manager.wait_until_finished()


def load_model(directory: Path) -> tuple[dict, dict]:
  """The newest checkpoint's (params, meta)."""
  with ocp.CheckpointManager(directory.absolute()) as manager:
    step = manager.latest_step()
    if step is None:
      raise RunDirError(f"{directory}: no checkpoint; run --phase=fit first")
    restored = manager.restore(step, args=ocp.args.Composite(
        params=ocp.args.StandardRestore(), meta=ocp.args.JsonRestore()))
  return restored.params, restored.meta
