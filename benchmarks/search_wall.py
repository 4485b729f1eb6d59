"""Wall time of a grid search: `experiments.grid --phase=search` against a
plain PyTorch loop over the same configurations, each as a fresh process.

  pip install -e ".[bench]"
  python -m benchmarks.search_wall --out=benchmarks/results/search_wall_cpu.jsonl

lstm_jax runs twice per grid: cold (an empty compilation cache) and warm
(the cache the cold run left); --ours=cold times a long grid once. Times
include interpreter start-up and imports on both sides.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from absl import app, flags

from lstm_jax import rundir

ROOT = Path(__file__).resolve().parents[1]
flags.DEFINE_string("data", str(ROOT.parent / "shared/data/ETTh1.csv"),
                    "CSV file.")
flags.DEFINE_string("column", "OT", "Column to forecast.")
flags.DEFINE_list("grids", ["small", "large"], "Which grids to time.")
flags.DEFINE_string("out", None, "Append one JSON line per grid.")
flags.DEFINE_list("ours", ["cold", "warm"], "Our runs: cold, warm or both "
                  "(warm needs cold first).")
FLAGS = flags.FLAGS

GRID = ["--units_min=32", "--units_max=96", "--units_step=32", "--layers=1,2",
        "--batch_size=128"]
GRIDS = {
    "small": GRID + ["--optimization_train_window=2000", "--epochs=3"],
    "large": GRID + ["--optimization_train_window=10000", "--epochs=5"],
}


def timed(module: str, args: list[str]) -> tuple[float, str]:
  env = {**os.environ, "PYTHONPATH": str(ROOT)}
  tick = time.perf_counter()
  done = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT,
                        env=env, capture_output=True, text=True, check=False)
  seconds = time.perf_counter() - tick
  if done.returncode:
    raise SystemExit(f"{module} failed:\n{done.stderr[-2000:]}")
  return seconds, done.stderr


def compile_seconds(log: str) -> float:
  return sum(map(float, re.findall(r"\(([\d.]+)s compiling\)", log)))


def measure(name: str, grid: list[str]) -> dict:
  data = [f"--data={FLAGS.data}", f"--column={FLAGS.column}"]
  with tempfile.TemporaryDirectory() as parent:
    ours = {"warm": (None, None)}
    for run in FLAGS.ours:
      seconds, log = timed("experiments.grid", [
          *data, *grid, "--phase=search", f"--workdir={parent}/{run}"])
      ours[run] = (seconds, compile_seconds(log))
  torch_seconds, _ = timed("benchmarks.torch_grid", [*data, *grid])
  warm = ours["warm"][0]
  return dict(grid=name, args=grid, torch_seconds=torch_seconds,
              cold_seconds=ours["cold"][0], cold_compile=ours["cold"][1],
              warm_seconds=warm, warm_compile=ours["warm"][1],
              cold_ratio=ours["cold"][0] / torch_seconds,
              warm_ratio=None if warm is None else warm / torch_seconds)


def main(argv):
  del argv
  print("grid   torch s  cold s (compile)  warm s (compile)  cold/torch  "
        "warm/torch")
  for name in FLAGS.grids:
    r = measure(name, GRIDS[name])
    warm = (f"{r['warm_seconds']:8.1f} ({r['warm_compile']:5.1f}) "
            f"{r['cold_ratio']:10.2f} {r['warm_ratio']:10.2f}"
            if r["warm_seconds"] else
            f"{'-':>16s} {r['cold_ratio']:10.2f} {'-':>10s}")
    print(f"{name:6s} {r['torch_seconds']:8.1f} {r['cold_seconds']:7.1f} "
          f"({r['cold_compile']:5.1f}) {warm}", flush=True)
    if FLAGS.out:
      rundir.append_jsonl(Path(FLAGS.out), r)


if __name__ == "__main__":
  app.run(main)
