"""Writes a synthetic CSV of 1-minute bars shaped like a broker's export.

  python -m benchmarks.make_bars --rows=7000000 --out=/tmp/bars_7m.csv

`Date;Open;High;Low;Close;Volume`, semicolon separated, times as
`YYYY.MM.DD HH:MM` with weekends left out (gaps, as in real markets), prices
a random walk with two decimals. 7 M rows make about 300 MB. Written in
blocks with pyarrow, so memory stays small. Never commit the output.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from absl import app, flags

flags.DEFINE_integer("rows", 7_000_000, "Bars to write.")
flags.DEFINE_string("out", None, "CSV file to write.", required=True)
flags.DEFINE_integer("seed", 0, "Random seed.")
FLAGS = flags.FLAGS
BLOCK = 1_000_000


def _minutes(count: int) -> np.ndarray:
  """The first `count` weekday minutes from 2004-06-14 (a Monday)."""
  week = 5 * 24 * 60
  index = np.arange(count)
  weeks, minute = np.divmod(index, week)
  return (np.datetime64("2004-06-14T00:00", "m")
          + (weeks * 7 * 24 * 60 + minute).astype("timedelta64[m]"))


def main(argv):
  del argv
  rng = np.random.default_rng(FLAGS.seed)
  price = 400.0
  with open(FLAGS.out, "w") as f:  # pyarrow would quote the header
    f.write("Date;Open;High;Low;Close;Volume\n")
  options = pacsv.WriteOptions(delimiter=";", quoting_style="none",
                               include_header=False)
  with open(FLAGS.out, "ab") as out, pacsv.CSVWriter(out, pa.schema([
      ("Date", pa.string()), ("Open", pa.float64()), ("High", pa.float64()),
      ("Low", pa.float64()), ("Close", pa.float64()), ("Volume", pa.int64())]),
      write_options=options) as writer:
    for first in range(0, FLAGS.rows, BLOCK):
      n = min(BLOCK, FLAGS.rows - first)
      close = price * np.exp(np.cumsum(rng.normal(0, 4e-4, n)))
      open_ = np.concatenate([[price], close[:-1]])
      spread = np.abs(rng.normal(0, 3e-4, n)) * close
      price = close[-1]
      stamps = pa.array(_minutes(first + n)[first:].astype("datetime64[s]"))
      writer.write_table(pa.table({
          "Date": pc.strftime(stamps, format="%Y.%m.%d %H:%M"),
          "Open": np.round(open_, 2),
          "High": np.round(np.maximum(open_, close) + spread, 2),
          "Low": np.round(np.minimum(open_, close) - spread, 2),
          "Close": np.round(close, 2),
          "Volume": rng.integers(1, 500, n)}))


if __name__ == "__main__":
  app.run(main)
