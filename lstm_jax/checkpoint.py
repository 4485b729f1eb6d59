"""Orbax checkpoints: trained models, and training loops to resume.

Beside the parameters a model checkpoint holds, as JSON, everything needed
to use them: the architecture, window length, scaler and the run's settings.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from lstm_jax.rundir import RunDirError, write_error


@contextlib.contextmanager
def _writing(directory: Path):
  """A failed write (a full disk, a size limit) as one RunDirError. Orbax
  wraps the system's error in a ValueError naming its code; the checkpoint
  was being written under a temporary name, so the previous one stands."""
  try:
    yield
  except OSError as error:
    raise write_error(directory, error) from None
  except ValueError as error:
    found = re.search(r"Failed to write [^:]*: ([^\[]+)\[os_error_code", str(error))
    if found is None:
      raise
    raise write_error(directory, OSError(found.group(1).strip())) from None


def save_model(directory: Path, params, meta: dict) -> None:
  """Saves a model as the newest checkpoint; older ones go once it is
  complete (a refit after a widened grid replaces the previous model)."""
  options = ocp.CheckpointManagerOptions(
      max_to_keep=1, cleanup_tmp_directories=True,
      enable_async_checkpointing=False)
  with _writing(directory), ocp.CheckpointManager(
      directory.absolute(), options=options) as manager:
    step = (manager.latest_step() or 0) + 1
    manager.save(step, args=ocp.args.Composite(
        params=ocp.args.StandardSave(params),
        meta=ocp.args.JsonSave(meta)), force=True)
    manager.wait_until_finished()


def load_model(directory: Path) -> tuple[dict, dict]:
  """The newest checkpoint's (params, meta), the params on this process's
  first device (whatever devices and processes saved them)."""
  handlers = {"params": ocp.StandardCheckpointHandler(),
              "meta": ocp.JsonCheckpointHandler()}  # to read the metadata
  with ocp.CheckpointManager(directory.absolute(),
                             item_handlers=handlers) as manager:
    step = manager.latest_step()
    if step is None:
      raise RunDirError(f"{directory}: no checkpoint; run --phase=fit first")
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    try:
      target = jax.tree.map(
          lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype,
                                            sharding=device),
          manager.item_metadata(step)["params"])
      restored = manager.restore(step, args=ocp.args.Composite(
          params=ocp.args.StandardRestore(target),
          meta=ocp.args.JsonRestore()))
    except Exception as error:  # Orbax and TensorStore raise many kinds
      raise RunDirError(
          f"{directory / str(step)}: damaged checkpoint ({type(error).__name__}"
          f": {str(error).splitlines()[0][:200]}); to fit again, delete that "
          "directory and run the same command") from None
  return restored.params, restored.meta


class LoopCheckpoints:
  """Snapshots of a training loop (a pytree of arrays and a JSON record)
  from which it resumes exactly.

  Orbax writes each snapshot into a temporary directory and renames it once
  complete, so one cut short by a kill is never restored (and is removed at
  the next start); the newest `keep` complete ones stay. `due` says when to
  save: after `every_steps` steps or `every_seconds` seconds since the last
  save, whichever comes first; with `epoch_ends_only`, at the first epoch end
  after that.
  """

  def __init__(self, directory: Path, *, keep: int = 2, every_steps: int = 0,
               every_seconds: float = 0.0, epoch_ends_only: bool = False):
    self.directory = directory
    self.every_steps, self.every_seconds = every_steps, every_seconds
    self.epoch_ends_only = epoch_ends_only
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, cleanup_tmp_directories=True,
        enable_async_checkpointing=False)
    self._manager = ocp.CheckpointManager(directory.absolute(),
                                          options=options)
    self._last_step = self._manager.latest_step() or 0
    self._last_time = time.monotonic()

  def restore(self, template, check: Callable[[dict], None] | None = None
              ) -> tuple[Any, dict] | None:
    """(tree, record) of the newest snapshot, shaped like `template`; None
    when there is none. `check(record)` runs before the tree is read, to
    refuse a snapshot of another setting with a clear error."""
    step = self._manager.latest_step()
    if step is None:
      return None
    if check is not None:
      check(self._manager.restore(step, args=ocp.args.Composite(
          record=ocp.args.JsonRestore())).record)
    restored = self._manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(template),
        record=ocp.args.JsonRestore()))
    return restored.state, restored.record

  def due(self, step: int, epoch_end: bool = False) -> bool:
    if self.epoch_ends_only and not epoch_end:
      return False
    return bool(
        (self.every_steps and step - self._last_step >= self.every_steps)
        or (self.every_seconds
            and time.monotonic() - self._last_time >= self.every_seconds))

  def save(self, step: int, tree, record: dict) -> None:
    with _writing(self.directory):
      self._manager.save(step, args=ocp.args.Composite(
          state=ocp.args.StandardSave(tree),
          record=ocp.args.JsonSave(record)), force=True)
      self._manager.wait_until_finished()
    self._last_step, self._last_time = step, time.monotonic()

  def close(self) -> None:
    self._manager.close()

  def remove(self) -> None:
    """Deletes every snapshot: the loop's result is safely elsewhere now."""
    self.close()
    shutil.rmtree(self.directory, ignore_errors=True)
