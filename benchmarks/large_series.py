"""The large-series path: preparation, memory, and streaming speed.

  python -m benchmarks.make_bars --rows=7000000 --out=/tmp/bars_7m.csv
  python -m benchmarks.large_series --csv=/tmp/bars_7m.csv --work=/tmp/large

Each measurement runs in a fresh process, so its peak resident memory
(ru_maxrss) is its own, and prints one JSON line; all are appended to
--results. What is measured (--only picks some):

  prepare    preparing the CSV (target column, time column checked for order
             and gaps, the .npy written), cold cache, next to
  pandas     pandas.read_csv (default C engine) reading the same file;
  reuse      a second run: from the call to the first chunk on the device,
             with the prepared file already in the cache;
  job        peak memory of the whole job on the CSV (units 16, one epoch of
             search on a small window, one epoch of final fit on all of it);
  fit70m     peak memory of a final fit (units 32, one layer, --fit_steps
             steps) on a 70 M-row float32 .npy generated directly;
  chunks     training steps/s with small chunks against one chunk holding
             the whole training split (same series, same steps).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from absl import app, flags

flags.DEFINE_string("csv", None, "The bars CSV (see benchmarks.make_bars).")
flags.DEFINE_string("work", "/tmp/lstm_jax_large", "Scratch directory.")
flags.DEFINE_list("only", ["prepare", "pandas", "reuse", "job", "fit70m",
                           "chunks"], "Measurements to run.")
flags.DEFINE_integer("fit_steps", 2000, "Steps of the 70 M-row fit.")
flags.DEFINE_integer("npy_rows", 70_000_000, "Rows of the generated .npy.")
flags.DEFINE_string("results", "benchmarks/results/large_series_cpu.jsonl",
                    "JSON lines appended here.")
flags.DEFINE_string("mode", None, "Internal: the measurement this process "
                    "makes.")
FLAGS = flags.FLAGS


def _peak_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Stop(Exception):
  pass


def _measure(mode: str) -> dict:
  work = Path(FLAGS.work)
  cache = work / "cache"
  if mode == "prepare":
    from lstm_jax.data.prepare import prepare
    shutil.rmtree(cache, ignore_errors=True)
    tick = time.perf_counter()
    prepared = prepare(FLAGS.csv, "Close", (), cache)
    return dict(seconds=time.perf_counter() - tick,
                rows=prepared.meta["rows"], gaps=prepared.meta["gaps"])
  if mode == "pandas":
    import pandas as pd
    tick = time.perf_counter()
    frame = pd.read_csv(FLAGS.csv, sep=";")
    return dict(seconds=time.perf_counter() - tick, rows=len(frame),
                pandas=pd.__version__)
  if mode == "reuse":
    import jax

    from lstm_jax.config import make_config
    from lstm_jax.data import prepare_dataset, read_series
    tick = time.perf_counter()
    series = read_series(FLAGS.csv, "Close", (), cache)
    data, _ = prepare_dataset(series, make_config())
    loader, _ = data.fit_data()
    chunk = loader.load(0, loader.chunk_order(0)[0])
    jax.block_until_ready(chunk.rows)
    return dict(seconds=time.perf_counter() - tick, chunks=loader.chunks)
  if mode == "job":
    flags_ = ["--data=" + FLAGS.csv, "--column=Close", f"--cache_dir={cache}",
              f"--workdir={work / 'run'}", "--units_min=16", "--units_max=16",
              "--layers=1", "--dropouts=0", "--epochs=1",
              "--optimization_train_window=2000",
              "--optimization_val_window=500"]
    shutil.rmtree(work / "run", ignore_errors=True)
    tick = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "experiments.grid", *flags_],
                          capture_output=True, text=True)
    if done.returncode:
      raise RuntimeError(done.stderr[-2000:])
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return dict(seconds=time.perf_counter() - tick, peak_mb_job=child)
  if mode in ("fit70m", "chunks"):
    return _fit(mode, work, cache)
  raise ValueError(mode)


def _fit(mode: str, work: Path, cache: Path) -> dict:
  import numpy as np

  from lstm_jax.config import Variant, make_config
  from lstm_jax.data import Series, prepare_dataset, read_series
  from lstm_jax.model import LSTMForecaster
  from lstm_jax.train import train_variants
  if mode == "fit70m":
    path = work / "series_70m.npy"
    if not path.exists():
      rng = np.random.default_rng(0)
      out = np.lib.format.open_memmap(path, "w+", np.float32,
                                      (FLAGS.npy_rows, 1))
      level = 0.0
      for lo in range(0, FLAGS.npy_rows, 1 << 22):
        steps = rng.normal(0, 1, min(1 << 22, FLAGS.npy_rows - lo))
        out[lo:lo + steps.size, 0] = level + np.cumsum(steps) * 0.01
        level = float(out[lo + steps.size - 1, 0])
      out.flush()
      del out
    series = read_series(str(path), "0", (), cache)
    steps, units = FLAGS.fit_steps, 32
  else:  # the same series twice: chunks of 10,000 windows, then one chunk
    t = np.arange(400_000)
    series = Series.from_values(np.sin(t / 50) + 0.001 * t, "x", "synthetic")
    steps, units = 300, 32
  results = {}
  for chunk_windows in ([1 << 20] if mode == "fit70m" else [10_000, 1 << 20]):
    config = make_config(epochs=1, checkpoint_steps=10**9,
                         chunk_windows=chunk_windows)
    data, _ = prepare_dataset(series, config)
    loader, val = data.fit_data()
    # Validation on its first 100,000 windows: the loop's cost is the point.
    val = type(val)(val.rows[:100_000 + config.sequence_length],
                    val.starts[:100_000], val.offset)
    marks = []

    def progress(epoch, step, loss, marks=marks, steps=steps):
      marks.append((step, time.perf_counter()))
      if step >= steps:
        raise _Stop

    tick = time.perf_counter()
    with contextlib.suppress(_Stop):
      train_variants(LSTMForecaster(units, 1), loader, val,
                     [Variant(0.0, 1e-3, 0)], data.config,
                     on_progress=progress)
    (s0, t0), (s1, t1) = marks[1], marks[-1]  # from the second segment on
    results[f"steps_per_s_chunk_{chunk_windows}"] = (s1 - s0) / (t1 - t0)
    results["train_windows"] = loader.windows
    results["seconds"] = time.perf_counter() - tick
  if mode == "chunks":
    results["ratio_small_to_whole"] = (results["steps_per_s_chunk_10000"]
                                       / results[f"steps_per_s_chunk_{1 << 20}"])
  return results


def main(argv):
  del argv
  if FLAGS.mode:
    record = dict(mode=FLAGS.mode, **_measure(FLAGS.mode),
                  peak_mb=round(_peak_mb(), 1))
    print(json.dumps(record), flush=True)
    return
  Path(FLAGS.work).mkdir(parents=True, exist_ok=True)
  lines = []
  for mode in FLAGS.only:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.large_series", f"--mode={mode}",
         f"--csv={FLAGS.csv}", f"--work={FLAGS.work}",
         f"--fit_steps={FLAGS.fit_steps}", f"--npy_rows={FLAGS.npy_rows}"],
        capture_output=True, text=True, env={**os.environ})
    if done.returncode:
      print(done.stderr[-3000:], file=sys.stderr)
      continue
    record = json.loads(done.stdout.strip().splitlines()[-1])
    record["date"] = time.strftime("%Y-%m-%d")
    print(json.dumps(record), flush=True)
    lines.append(record)
  with open(FLAGS.results, "a") as f:
    for record in lines:
      f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
  app.run(main)
