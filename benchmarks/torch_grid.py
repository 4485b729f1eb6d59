"""The grid search as researchers run it today: PyTorch, one configuration
after another, on the same windows lstm_jax's search uses.

  python -m benchmarks.torch_grid --data=../shared/data/ETTh1.csv --column=OT \
      --units_min=32 --units_max=96 --units_step=32 --layers=1,2 \
      --optimization_train_window=2000 --epochs=3 --batch_size=128
"""

from __future__ import annotations

import time

import numpy as np
import torch
from absl import app, flags

from benchmarks import torch_reference as ref
from experiments.config_flags import config_from_flags, define_config_flags
from lstm_jax.config import architectures, variants
from lstm_jax.data import prepare_dataset, read_series

define_config_flags()
flags.DEFINE_string("data", None, "CSV file.", required=True)
flags.DEFINE_string("column", None, "Column to forecast.", required=True)
FLAGS = flags.FLAGS


def main(argv):
  del argv
  ref.use_all_threads()
  config, explicit = config_from_flags("conservative")
  data, _ = prepare_dataset(read_series(FLAGS.data, FLAGS.column), config,
                            explicit)
  config = data.config
  loader, val = data.search_data()
  series = torch.from_numpy(data.scaled(0, data.splits.val_end))
  train_starts = np.arange(loader.first, loader.end)
  val_starts = val.offset + val.starts
  started = time.perf_counter()
  for units, layers in architectures(config):
    for variant in variants(config):
      torch.manual_seed(variant.seed)
      rng = np.random.default_rng(config.seed)
      model = ref.TorchForecaster(1, units, layers, variant.dropout)
      optimizer = torch.optim.Adam(model.parameters(), variant.learning_rate)
      best = np.inf
      for _ in range(config.epochs):
        ref.train_epoch(model, optimizer, series, train_starts,
                        config.sequence_length, config.batch_size, rng)
        best = min(best, ref.eval_loss(model, series, val_starts,
                                       config.sequence_length))
      print(f"units={units} layers={layers} dropout={variant.dropout} "
            f"learning_rate={variant.learning_rate} seed={variant.seed}: "
            f"val_loss {best:.5f}", flush=True)
  print(f"grid seconds {time.perf_counter() - started:.2f}")


if __name__ == "__main__":
  app.run(main)
