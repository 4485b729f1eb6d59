"""Orbax checkpoints of a trained model that restore without the command.

Beside the parameters each checkpoint holds, as JSON, everything needed to
use them: the architecture, window length, scaler and the run's settings.
"""

from __future__ import annotations

from pathlib import Path

import orbax.checkpoint as ocp

from lstm_jax.rundir import RunDirError


def save_model(directory: Path, step: int, params, meta: dict) -> None:
  options = ocp.CheckpointManagerOptions(max_to_keep=2)
  with ocp.CheckpointManager(directory.absolute(), options=options) as manager:
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
