"""Searches LSTM sizes, trains the best on all the data, evaluates it.

  python -m experiments.grid      # built-in synthetic demo series, demo preset
  python -m experiments.grid --data=../shared/data/ETTh1.csv --column=OT \
      --workdir=runs/etth1 --units_min=32 --units_max=64 --units_step=32 \
      --layers=1,2 --epochs=5
"""

from __future__ import annotations

import signal
import sys

# Ctrl-C while the program starts (its imports take seconds) is held here
# until main() can stop cleanly, rather than lost in a library's callback.
STARTING_INTERRUPTS: list[int] = []
if __name__ == "__main__":
  signal.signal(signal.SIGINT, lambda signum, _: STARTING_INTERRUPTS.append(
      signum))

import time
from pathlib import Path

import jax
import jax.numpy as jnp
from absl import app, flags, logging

from experiments import cluster_flags
from experiments.config_flags import (
    config_from_flags,
    define_config_flags,
    parse_flags,
)
from experiments.interrupt import Interruption, resume_command
from experiments.logs import quiet_orbax
from experiments.progress import FitProgress
from lstm_jax import job, search
from lstm_jax.config import ConfigError
from lstm_jax.data import (
    DataError,
    ReadOptions,
    demo_series,
    prepare_dataset,
    read_series,
)
from lstm_jax.data.missing import POLICIES
from lstm_jax.distributed import is_primary
from lstm_jax.rundir import RunDirError

define_config_flags()
flags.DEFINE_string("data", None, "CSV (any delimiter, .gz too), Parquet or "
                    ".npy file; without it a synthetic demo series is used.")
flags.DEFINE_string("column", None, "Column to forecast (CSV, Parquet: its "
                    "name; 2-D .npy: its index).")
flags.DEFINE_list("features", [], "Input columns besides --column (which is "
                  "always one), e.g. open,high,low,close,volume; default: "
                  "--column alone.")
flags.DEFINE_enum("missing", "error", list(POLICIES), "Missing cells (empty, "
                  "NaN, null, NA, -): stop with their rows (error), carry the "
                  "last value forward (ffill), draw a straight line between "
                  "neighbours (interpolate), or leave their rows out (drop).")
flags.DEFINE_enum("decimal", ".", [".", ","], "Decimal mark of a CSV's "
                  "numbers (a comma needs another delimiter, such as ;).")
flags.DEFINE_string("cache_dir", None, "Where prepared data files are kept; "
                    "default $XDG_CACHE_HOME/lstm_jax or ~/.cache/lstm_jax.")
flags.DEFINE_string("workdir", None, "Run directory; default runs/<data name>.")
flags.DEFINE_string("preset", None, "conservative, aggressive, "
                    "ultra_conservative or demo; default conservative with "
                    "--data, demo without. Explicit flags override it.")
flags.DEFINE_enum("phase", "all", ["all", *job.PHASES, "collect"],
                  "Phase to run: all (search, fit, evaluate), one of them, or "
                  "collect (the table of a search split over tasks).")
flags.DEFINE_bool("dry_run", False, "Print the grid's cells with their "
                  "parameter counts and estimates of time and device memory, "
                  "then exit without training (nothing is written).")
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
                     FLAGS.cache_dir and Path(FLAGS.cache_dir),
                     ReadOptions(FLAGS.missing, FLAGS.decimal))


def _recurrent_rate(units: int = 128, batch: int = 256,
                    length: int = 60) -> float:
  """FLOP/s of a scan of `length` small matmuls on the default device, the
  shape of an LSTM's recurrence (a closer guide than one large matmul)."""
  w = jnp.full((units, 4 * units), 0.01, jnp.float32)

  def body(h, _):
    return jnp.tanh(h @ w)[:, :units], None

  run = jax.jit(lambda h: jax.lax.scan(body, h, None, length)[0])
  h = jnp.ones((batch, units), jnp.float32)
  run(h).block_until_ready()
  tick = time.perf_counter()
  for _ in range(5):
    run(h).block_until_ready()
  flops = 5 * length * 2 * batch * units * 4 * units
  return flops / (time.perf_counter() - tick)


def _print_plan(data) -> None:
  rate = _recurrent_rate()
  rows = search.plan(data, rate)
  device = jax.devices()[0].device_kind
  print(f"dry run: {len(rows)} cells x {rows[0]['variants']} variants, "
        f"{rows[0]['windows']} search windows, {data.config.epochs} epochs; "
        f"{device}, recurrent matmuls at {rate / 1e9:.0f} GFLOP/s")
  print(f"{'units':>6} {'layers':>6} {'parameters':>11} {'windows/param':>13} "
        f"{'GFLOP':>10} {'seconds':>11} {'device MB':>10}")
  for r in rows:
    print(f"{r['units']:>6} {r['layers']:>6} {r['parameters']:>11} "
          f"{r['samples_per_parameter']:>13.3g} {r['gflops']:>10.1f} "
          f"{r['seconds_at_least']:>11.1f} {r['device_mb']:>10.1f}")
  total = sum(r["seconds_at_least"] for r in rows)
  print(f"search: about {total:.0f} s or more at that rate, compilation "
        "aside (benchmarks/RESULTS.md has measured training rates)")


def main(argv):
  del argv
  quiet_orbax()
  preset = FLAGS.preset or ("conservative" if FLAGS.data else "demo")
  # runs/<the file's name>, leading dots and extensions dropped.
  name = Path(FLAGS.data).name.lstrip(".").split(".")[0] if FLAGS.data else "demo"
  workdir = Path(FLAGS.workdir or f"runs/{name or 'series'}")
  try:
    shard = cluster_flags.start(FLAGS.phase)
    config, explicit = config_from_flags(preset)
    series = _series()
    data, notes = prepare_dataset(series, config, explicit)
    for note in notes:
      logging.info("%s", note)
    for note in (series.gap_note(), series.time_note()):
      if note:
        logging.warning("%s", note)
    if FLAGS.dry_run:
      _print_plan(data)
      return
    # Reused by every later run beside this one: no recompilation on resume.
    jax.config.update("jax_compilation_cache_dir",
                      str(workdir.absolute().parent / ".jax_cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    progress = FitProgress() if is_primary() else None
    if STARTING_INTERRUPTS:
      raise KeyboardInterrupt  # nothing is written yet
    with Interruption() as interruption:
      try:
        job.run(data, workdir, FLAGS.phase, job.Control(
            progress, interruption, shard))
      finally:
        if progress:
          progress.close()
  except (ConfigError, DataError, RunDirError) as error:
    if logging.get_verbosity() > logging.INFO:
      logging.exception("the error in full")
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)
  except KeyboardInterrupt:
    print("interrupted; finished results and the last checkpoint are saved. "
          f"To resume: {resume_command()}", file=sys.stderr)
    sys.exit(130)
  logging.info("results in %s (report.md)", workdir)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
