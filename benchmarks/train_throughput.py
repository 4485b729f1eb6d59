"""Training throughput of the vmapped program against PyTorch's nn.LSTM.

  pip install -e ".[bench]"
  python -m benchmarks.train_throughput --shapes=64x1,128x2,256x2 \
      --variants=1,4,8 --out=benchmarks/results/train_throughput_cpu.jsonl

Each figure is variant-samples per second over `--steps` training steps,
the median of `--runs` runs after a warm-up run, compilation timed apart.
PyTorch trains the K variants one after another, as a loop over a grid does.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import torch
from absl import app, flags

from benchmarks import torch_reference as ref
from benchmarks.common import flops_per_sample, ours, pytorch
from lstm_jax import rundir

flags.DEFINE_list("shapes", ["64x1", "128x2", "256x2"], "units x layers")
flags.DEFINE_list("variants", ["1", "4", "8"], "K, variants trained at once")
flags.DEFINE_integer("steps", 10, "Training steps per timed run.")
flags.DEFINE_integer("runs", 5, "Timed runs; the median is reported.")
flags.DEFINE_integer("batch_size", 256, "Windows per step.")
flags.DEFINE_integer("sequence_length", 60, "Window length.")
flags.DEFINE_string("out", None, "Append one JSON line per measurement.")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  threads = ref.use_all_threads()
  batch, length, steps = FLAGS.batch_size, FLAGS.sequence_length, FLAGS.steps
  rows = steps * batch + length + 1
  series = np.random.default_rng(0).normal(size=(rows, 1)).astype(np.float32)
  device_series = jax.device_put(series)
  pytorch(series, 8, 1, 1, steps, batch, length, 1)  # torch's one-off start-up
  print(f"device {jax.devices()[0].device_kind}, torch threads {threads}")
  print("units layers  K  ours vs/s  torch vs/s  ratio  ours GFLOP/s  compile s")
  for shape in FLAGS.shapes:
    units, layers = map(int, shape.split("x"))
    for variants in map(int, FLAGS.variants):
      samples = variants * steps * batch
      t_ours, compile_s = ours(device_series, units, layers, variants, steps,
                               batch, length, FLAGS.runs)
      t_torch = pytorch(series, units, layers, variants, steps, batch, length,
                        FLAGS.runs)
      result = dict(
          units=units, layers=layers, variants=variants, steps=steps,
          batch=batch, length=length, ours_per_s=samples / t_ours,
          torch_per_s=samples / t_torch, ratio=t_torch / t_ours,
          ours_gflops=samples * flops_per_sample(units, layers, length)
          / t_ours / 1e9, compile_seconds=compile_s,
          device=jax.devices()[0].device_kind, jax=jax.__version__,
          torch=torch.__version__, threads=threads)
      print(f"{units:5d} {layers:6d} {variants:2d} {result['ours_per_s']:10.0f}"
            f" {result['torch_per_s']:11.0f} {result['ratio']:6.2f}"
            f" {result['ours_gflops']:13.1f} {compile_s:10.1f}", flush=True)
      if FLAGS.out:
        rundir.append_jsonl(Path(FLAGS.out), result)


if __name__ == "__main__":
  app.run(main)
