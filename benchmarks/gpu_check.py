"""A GPU node's check: our throughput against PyTorch cuDNN, by precision.

  PYTHONPATH=. python -m benchmarks.gpu_check --out=$OUT/gpu_check.jsonl

Times forecasting the test windows of a (256, 2) model first (1 M by
default). Runs unattended in under about four minutes: it stops starting new
measurements after --budget_seconds and writes each result as one JSON line
the moment it has it, then prints a table. Figures are variant-samples per
second (median of --runs runs of --steps steps, compilation apart), with the
achieved FLOP/s as a share of the device's measured matmul rate.
"""

from __future__ import annotations

import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import torch
from absl import app, flags

from benchmarks.common import flops_per_sample, ours, pytorch
from benchmarks.forecast_speed import time_forecast

flags.DEFINE_string("out", "gpu_check.jsonl", "JSON lines, one per result.")
flags.DEFINE_integer("steps", 10, "Training steps per timed run.")
flags.DEFINE_integer("runs", 5, "Timed runs; the median is reported.")
flags.DEFINE_float("budget_seconds", 200, "Start nothing new after this.")
flags.DEFINE_list("shapes", ["128x2", "256x2"], "units x layers")
flags.DEFINE_list("variants", ["1", "4", "16", "64"], "K at float32")
flags.DEFINE_integer("matmul_size", 8192, "Side of the matmul-rate probe.")
flags.DEFINE_integer("forecast_windows", 1_000_000, "Test windows forecast "
                     "by a (256, 2) model, timed first; 0 skips it.")
FLAGS = flags.FLAGS
BATCH, LENGTH = 256, 60
# (name, matmul precision, matmul dtype): float32 at highest precision, the
# default (TF32 on recent NVIDIA GPUs), and bfloat16 operands.
TORCH_DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # cpu: a dry run
PRECISIONS = (("float32", "highest", None), ("tf32", "default", None),
              ("bfloat16", "default", jnp.bfloat16))


def matmul_rate(precision: str, dtype) -> float:
  """FLOP/s of a large square matmul: the device's practical ceiling."""
  n = FLAGS.matmul_size
  a = jnp.ones((n, n), dtype or jnp.float32)
  with jax.default_matmul_precision(precision):
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    tick = time.perf_counter()
    for _ in range(10):
      out = f(a)
    out.block_until_ready()
  return 10 * 2 * n**3 / (time.perf_counter() - tick)


def measurements():
  """(what, K, precision) in the order they run: most important first."""
  shapes = [tuple(map(int, s.split("x"))) for s in FLAGS.shapes]
  variants = [int(k) for k in FLAGS.variants]
  for units, layers in shapes:
    for k in variants:
      yield "ours", units, layers, k, PRECISIONS[0]
    yield "torch", units, layers, 1, PRECISIONS[0]
  for units, layers in shapes:
    for precision in PRECISIONS[1:]:
      for k in variants[1:3]:
        yield "ours", units, layers, k, precision
    yield "torch", units, layers, 1, PRECISIONS[1]


def measure(series, torch_series, what, units, layers, k, precision):
  name, matmul_precision, dtype = precision
  if what == "torch":
    torch.backends.cuda.matmul.allow_tf32 = name == "tf32"
    torch.backends.cudnn.allow_tf32 = name == "tf32"
    # K cuDNN models one after another cost K times one: time one.
    seconds = pytorch(torch_series, units, layers, k, FLAGS.steps, BATCH,
                      LENGTH, FLAGS.runs, device=TORCH_DEVICE)
    compile_seconds = 0.0
  else:
    with jax.default_matmul_precision(matmul_precision):
      seconds, compile_seconds = ours(series, units, layers, k, FLAGS.steps,
                                      BATCH, LENGTH, FLAGS.runs, dtype)
  samples = k * FLAGS.steps * BATCH
  return dict(what=what, units=units, layers=layers, variants=k,
              precision=name, per_s=samples / seconds, seconds=seconds,
              compile_seconds=compile_seconds,
              gflops=samples * flops_per_sample(units, layers, LENGTH)
              / seconds / 1e9)


def main(argv):
  del argv
  started = time.perf_counter()
  device = jax.devices()[0]
  rows = FLAGS.steps * BATCH + LENGTH + 1
  host = np.random.default_rng(0).normal(size=(rows, 1)).astype(np.float32)
  series = jax.device_put(host)
  rates = {p[0]: matmul_rate(p[1], p[2]) for p in PRECISIONS}
  header = dict(device=device.device_kind, jax=jax.__version__,
                torch=torch.__version__,
                cudnn=torch.backends.cudnn.version(),
                matmul_tflops={k: v / 1e12 for k, v in rates.items()})
  results = []
  with open(FLAGS.out, "w") as out:
    out.write(json.dumps(header) + "\n")
    out.flush()
    forecast = None
    if FLAGS.forecast_windows:  # the evaluation's goal: 1 M under a minute
      forecast = dict(what="forecast", **time_forecast(
          256, 2, FLAGS.forecast_windows, LENGTH))
      out.write(json.dumps(forecast) + "\n")
      out.flush()
    for spec in measurements():
      if time.perf_counter() - started > FLAGS.budget_seconds:
        out.write(json.dumps({"stopped": "budget", "next": str(spec)}) + "\n")
        break
      result = measure(series, host, *spec)
      result["of_matmul_rate"] = result["gflops"] * 1e9 / rates[
          result["precision"]]
      results.append(result)
      out.write(json.dumps(result) + "\n")
      out.flush()
  print(json.dumps(header))
  print("what  units layers    K precision  variant-samples/s  GFLOP/s  "
        "of matmul  compile s")
  for r in results:
    print(f"{r['what']:5s} {r['units']:5d} {r['layers']:6d} {r['variants']:4d} "
          f"{r['precision']:9s} {r['per_s']:17.0f} {r['gflops']:8.0f} "
          f"{r['of_matmul_rate']:9.1%} {r['compile_seconds']:10.1f}")
  _print_ratios(results)
  if forecast:
    print(f"forecast: {forecast['windows']:,} windows of a (256, 2) model in "
          f"{forecast['seconds']} s ({forecast['windows_per_s']:,}/s)")
  print(f"total {time.perf_counter() - started:.0f}s")


def _print_ratios(results):
  """K = 4 against K = 1, and ours against K cuDNN models in turn."""
  by = {(r["what"], r["units"], r["layers"], r["variants"], r["precision"]): r
        for r in results}
  for (what, units, layers, k, precision), r in sorted(by.items()):
    one = by.get(("ours", units, layers, 1, precision))
    # cuDNN has no bfloat16 path here; its TF32 figure stands in.
    cudnn = by.get(("torch", units, layers, 1,
                    "tf32" if precision == "bfloat16" else precision))
    if what != "ours" or k == 1:
      continue
    cost = f"{r['seconds'] / one['seconds']:.2f}x K=1's time" if one else ""
    # torch trains K models in turn: its variant-samples/s do not grow with K.
    speed = f"{r['per_s'] / cudnn['per_s']:.2f}x cuDNN" if cudnn else ""
    print(f"({units},{layers}) K={k} {precision}: {cost}  {speed}")


if __name__ == "__main__":
  app.run(main)
