"""Searches LSTM sizes, trains the best on all the data, evaluates it.

  python -m experiments.grid      # built-in synthetic demo series, demo preset
  python -m experiments.grid --data=../shared/data/ETTh1.csv --column=OT \
      --workdir=runs/etth1 --units_min=32 --units_max=64 --units_step=32 \
      --layers=1,2 --epochs=5
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
from absl import app, flags, logging

from experiments.config_flags import config_from_flags, define_config_flags
from experiments.logs import quiet_orbax
from experiments.progress import FitProgress
from lstm_jax import job
from lstm_jax.config import ConfigError
from lstm_jax.data import DataError, demo_series, prepare_dataset, read_series
from lstm_jax.rundir import RunDirError

define_config_flags()
flags.DEFINE_string("data", None, "CSV (any delimiter, .gz too), Parquet or "
                    ".npy file; without it a synthetic demo series is used.")
flags.DEFINE_string("column", None, "Column to forecast (CSV, Parquet: its "
                    "name; 2-D .npy: its index).")
flags.DEFINE_list("features", [], "Input columns besides --column (which is "
                  "always one), e.g. open,high,low,close,volume; default: "
                  "--column alone.")
flags.DEFINE_string("cache_dir", None, "Where prepared data files are kept; "
                    "default $XDG_CACHE_HOME/lstm_jax or ~/.cache/lstm_jax.")
flags.DEFINE_string("workdir", None, "Run directory; default runs/<data name>.")
flags.DEFINE_string("preset", None, "conservative, aggressive, "
                    "ultra_conservative or demo; default conservative with "
                    "--data, demo without. Explicit flags override it.")
flags.DEFINE_enum("phase", "all", ["all", *job.PHASES], "Phase to run.")
FLAGS = flags.FLAGS


def _series():
  if FLAGS.data is None:
    if FLAGS.column is not None or FLAGS.features:
      raise ConfigError("--column and --features need --data; without "
                        "--data the synthetic demo series is used")
    return demo_series()
  if not FLAGS.data:
    raise ConfigError("--data is empty; give a file or leave the flag out "
                      "for the demo series")
  return read_series(FLAGS.data, FLAGS.column, tuple(FLAGS.features),
                     FLAGS.cache_dir and Path(FLAGS.cache_dir))


def main(argv):
  del argv
  quiet_orbax()
  preset = FLAGS.preset or ("conservative" if FLAGS.data else "demo")
  name = Path(FLAGS.data).name.split(".")[0] if FLAGS.data else "demo"
  workdir = Path(FLAGS.workdir or f"runs/{name}")
  try:
    config, explicit = config_from_flags(preset)
    series = _series()
    data, notes = prepare_dataset(series, config, explicit)
    for note in notes:
      logging.info("%s", note)
    # Reused by every later run beside this one: no recompilation on resume.
    jax.config.update("jax_compilation_cache_dir",
                      str(workdir.absolute().parent / ".jax_cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    progress = FitProgress()
    try:
      job.run(data, workdir, FLAGS.phase, fit_progress=progress)
    finally:
      progress.close()
  except (ConfigError, DataError, RunDirError) as error:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)
  except KeyboardInterrupt:
    print("interrupted: run the same command again to resume from the last "
          "checkpoint", file=sys.stderr)
    sys.exit(130)
  logging.info("results in %s (report.md)", workdir)


if __name__ == "__main__":
  app.run(main)
