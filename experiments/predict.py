"""Forecasts the next values after the end of a series with a finished run.

  python -m experiments.predict --workdir=runs/etth1
  python -m experiments.predict --workdir=runs/etth1 --data=newer.csv

Loads the run's final checkpoint, which carries everything needed (the
architecture, window length, horizon, target transform, scaler, columns),
reads the series (the run's own file, or --data: a newer file with the same
columns), and writes the `horizon` values after its last row, with times
when the series has them, to --out (default <workdir>/forecast.csv). No
training code runs.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

from absl import app, flags

from experiments.config_flags import parse_flags
from experiments.logs import quiet_orbax
from lstm_jax import rundir
from lstm_jax.data import DataError
from lstm_jax.data.missing import POLICIES
from lstm_jax.predict import forecast

flags.DEFINE_string("workdir", None, "A run directory with a finished fit.")
flags.DEFINE_string("data", None, "Series to forecast from; default the "
                    "run's own file.")
flags.DEFINE_string("cache_dir", None, "Where prepared data files are kept.")
flags.DEFINE_string("out", None, "CSV to write; default "
                    "<workdir>/forecast.csv.")
flags.DEFINE_enum("missing", None, list(POLICIES), "Missing cells in --data "
                  "(empty, NaN, null, -); default as the run read its file.")
flags.DEFINE_enum("decimal", None, [".", ","], "Decimal mark of --data; "
                  "default as the run read its file.")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  quiet_orbax()
  if not FLAGS.workdir:
    print("error: --workdir is required: the run directory to forecast "
          "with", file=sys.stderr)
    sys.exit(2)
  workdir = Path(FLAGS.workdir)
  try:
    rows = forecast(workdir, FLAGS.data,
                    FLAGS.cache_dir and Path(FLAGS.cache_dir), FLAGS.missing,
                    FLAGS.decimal)
    out = io.StringIO()
    writer = csv.DictWriter(out, ["step", "time", "forecast"],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    rundir.write_atomic(Path(FLAGS.out or workdir / "forecast.csv"),
                        out.getvalue())
  except (DataError, rundir.RunDirError) as error:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)
  for row in rows:
    print(f"{row['step']:>4}  {row['time'] or '':19}  {row['forecast']:.6g}")


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
