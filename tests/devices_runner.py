"""Trains the same variants on one device and laid over four (CPU) devices;
prints, as JSON, how each was laid out and the largest relative difference
of its results. Run by tests/test_devices.py in a process of its own, since
the device count is fixed when JAX starts."""

import json
import os
import sys
from pathlib import Path

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=4")

import jax  # noqa: E402
import numpy as np  # noqa: E402

from lstm_jax.checkpoint import LoopCheckpoints  # noqa: E402
from lstm_jax.config import Variant, make_config  # noqa: E402
from lstm_jax.data import WindowLoader, Windows  # noqa: E402
from lstm_jax.distributed import Placement  # noqa: E402
from lstm_jax.model import LSTMForecaster  # noqa: E402
from lstm_jax.train import train_variants  # noqa: E402


def train(dropouts, placement, batch=8, checkpoints=None):
  rng = np.random.default_rng(0)
  series = rng.normal(size=(300, 2)).astype(np.float32)
  loader = WindowLoader(lambda lo, hi: series[lo:hi], 0, 150, length=8,
                        batch_size=batch, chunk_windows=64, seed=0,
                        features=2)
  val = Windows(series, np.arange(160, 280, dtype=np.int32), 0)
  config = make_config(sequence_length=8, batch_size=batch, epochs=3,
                       segment_steps=3, lr_patience=1)
  variants = [Variant(d, 1e-2, 0) for d in dropouts]
  return train_variants(LSTMForecaster(6, 2), loader, val, variants, config,
                        placement=placement, checkpoints=checkpoints)


def difference(a, b) -> float:
  """The largest relative difference of the validation losses, training
  losses and best parameters (per array, in norm) of two results."""
  pairs = [(a.best_val_loss, b.best_val_loss),
           (a.train_loss_at_best, b.train_loss_at_best)]
  pairs += list(zip(jax.tree.leaves(a.best_params),
                    jax.tree.leaves(b.best_params), strict=True))
  return max(float(np.linalg.norm(np.asarray(x) - np.asarray(y))
                   / np.linalg.norm(np.asarray(y))) for x, y in pairs)


def main():
  out = {"devices": jax.device_count()}
  for name, dropouts, batch in [("four_variants", [0.0, 0.1, 0.2, 0.3], 8),
                                ("three_variants", [0.0, 0.1, 0.3], 8),
                                ("fit", [0.2], 8)]:
    placement = Placement.choose(len(dropouts), batch)
    alone = train(dropouts, Placement())
    spread = train(dropouts, placement)
    out[name] = dict(split=placement.split, devices=placement.devices,
                     difference=difference(spread, alone),
                     epochs=[len(alone.history), len(spread.history)])
  # Nothing divides over 4 devices: one does the work, said in a warning.
  out["undivided"] = Placement.choose(3, 6, allow_variants=False).devices
  # A sharded loop checkpoints and resumes on the same layout.
  placement = Placement.choose(4, 8)
  path = Path(sys.argv[1]) / "loop"
  train([0.0, 0.1, 0.2, 0.3], placement,
        checkpoints=LoopCheckpoints(path, every_steps=1))
  resumed = train([0.0, 0.1, 0.2, 0.3], placement,
                  checkpoints=LoopCheckpoints(path, every_steps=1))
  out["resumed_difference"] = difference(
      resumed, train([0.0, 0.1, 0.2, 0.3], Placement()))
  print(json.dumps(out))


if __name__ == "__main__":
  main()
