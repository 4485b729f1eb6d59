"""Beyond one device: several devices in a process, a search split over
tasks, and a final fit over several processes, all on this CPU."""

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from lstm_jax.checkpoint import load_model
from lstm_jax.distributed import Shard, cells_of, shard_from_env

ROOT = Path(__file__).resolve().parents[1]
GRID = ["--column=value", "--units_min=8", "--units_max=16", "--units_step=8",
        "--layers=1,2", "--dropouts=0,0.3", "--sequence_length=12",
        "--optimization_train_window=300", "--optimization_val_window=80",
        "--epochs=2", "--batch_size=32", "--nocompare_runner_up"]
TIMES = {"seconds", "compile_seconds"}


def _env(**extra):
  return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


def _grid(*argv, **env):
  return subprocess.Popen(
      [sys.executable, "-m", "experiments.grid", *argv], cwd=ROOT,
      env=_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True)


def _finish(*runs):
  for run in runs:
    _, err = run.communicate(timeout=900)
    assert run.returncode == 0, err[-3000:]


def _table(workdir: Path) -> list[dict]:
  with open(workdir / "search_results.csv") as f:
    return [{k: v for k, v in row.items() if k not in TIMES}
            for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> Path:
  path = tmp_path_factory.mktemp("data") / "wave.csv"
  t = np.arange(1200)
  values = np.sin(t / 10) + 0.1 * np.random.default_rng(3).normal(size=t.size)
  path.write_text("value\n" + "".join(f"{v:.6f}\n" for v in values))
  return path


def test_the_share_comes_from_flags_or_a_slurm_array():
  assert shard_from_env(None, None, {}) == Shard(0, 1)
  array = {"SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_ID": "7",
           "SLURM_ARRAY_TASK_MIN": "5"}
  assert shard_from_env(None, None, array) == Shard(2, 4)
  assert shard_from_env(3, 1, array) == Shard(1, 3)  # flags win
  with pytest.raises(ValueError, match=r"--shard_index=4 must lie in \[0, 4\)"):
    shard_from_env(4, 4, {})
  cells = [(u, n) for u in (8, 16, 24) for n in (1, 2)]
  shares = [cells_of(cells, Shard(i, 4)) for i in range(4)]
  assert shares[1] == [(8, 2), (24, 2)]  # cells 1 and 5
  assert sorted(sum(shares, [])) == sorted(cells)


def test_four_search_tasks_on_one_directory_give_the_one_task_table(
    series, tmp_path):
  alone, shared = tmp_path / "alone", tmp_path / "shared"
  data = f"--data={series}"
  single = _grid(data, f"--workdir={alone}", "--phase=search", *GRID)
  tasks = [_grid(data, f"--workdir={shared}", "--phase=search", *GRID,
                 SLURM_ARRAY_TASK_COUNT="4", SLURM_ARRAY_TASK_ID=str(i))
           for i in range(4)]
  _finish(single, *tasks)
  cells = sorted(p.name for p in (shared / "search").iterdir())
  assert cells == ["cell_u16_l1.json", "cell_u16_l2.json", "cell_u8_l1.json",
                   "cell_u8_l2.json"]  # no checkpoints left
  assert _table(shared) == _table(alone)  # collected by the last task
  selected = json.loads((shared / "selected.json").read_text())
  assert selected == json.loads((alone / "selected.json").read_text())
  # Collecting again, explicitly, by three collectors racing: one whole
  # table, the same, and no temporary file left.
  (shared / "search_results.csv").unlink()
  _finish(*[_grid(data, f"--workdir={shared}", "--phase=collect", *GRID,
                  "--num_shards=4", f"--shard_index={i}") for i in range(3)])
  assert _table(shared) == _table(alone)
  assert not [p for p in shared.rglob(".*") if p.is_file()]


def test_a_sharded_task_refuses_the_other_phases(series, tmp_path):
  run = _grid(f"--data={series}", f"--workdir={tmp_path}", *GRID,
              "--num_shards=2", "--shard_index=0")
  _, err = run.communicate(timeout=300)
  assert run.returncode == 2
  assert err.strip().splitlines()[-1].startswith(
      "error: --num_shards=2 splits the search over tasks")


def test_four_devices_give_the_one_device_results(tmp_path):
  done = subprocess.run(
      [sys.executable, str(ROOT / "tests" / "devices_runner.py"),
       str(tmp_path)], cwd=ROOT, env=_env(), capture_output=True, text=True,
      timeout=900)
  assert done.returncode == 0, done.stderr[-3000:]
  out = json.loads(done.stdout.strip().splitlines()[-1])
  assert out["devices"] == 4
  # K = 4 splits the variants; K = 3 and the fit (K = 1) split the batch.
  assert [out[k]["split"] for k in ("four_variants", "three_variants",
                                    "fit")] == ["variants", "batch", "batch"]
  for name in ("four_variants", "three_variants", "fit"):
    assert out[name]["epochs"] == [3, 3]
    assert out[name]["difference"] < 1e-5, (name, out[name])
  assert out["resumed_difference"] < 1e-5
  assert out["undivided"] == 1
  assert ("4 devices: the batch of 6 does not divide over them, so one "
          "device does all the work; make --batch_size a multiple of 4"
          in done.stderr)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_fit_together_as_one(series, tmp_path):
  searched = tmp_path / "searched"
  data, fit = f"--data={series}", [*GRID, "--dropouts=0.3", "--units_max=8",
                                   "--layers=1", "--epochs=3"]
  _finish(_grid(data, f"--workdir={searched}", "--phase=search", *fit))
  one, two = tmp_path / "one", tmp_path / "two"
  shutil.copytree(searched, one)
  shutil.copytree(searched, two)
  _finish(_grid(data, f"--workdir={one}", "--phase=all", *fit))
  port = _free_port()
  # Saves due by each process's own clock at almost every segment end, and
  # segments sized by timing: the processes must agree on both.
  pair = [_grid(data, f"--workdir={two}", "--phase=fit", *fit,
                "--checkpoint_minutes=0.0002", "--distributed",
                f"--coordinator_address=localhost:{port}",
                "--num_processes=2", f"--process_id={i}") for i in (0, 1)]
  _finish(*pair)
  _finish(_grid(data, f"--workdir={two}", "--phase=evaluate", *fit))
  a, _ = load_model(one / "checkpoints")
  b, _ = load_model(two / "checkpoints")
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=1e-5,
                               atol=1e-6)
  fits = [json.loads((d / "fit_summary.json").read_text()) for d in (one, two)]
  assert fits[0]["best_epoch"] == fits[1]["best_epoch"]
  assert fits[1]["best_val_loss"] == pytest.approx(fits[0]["best_val_loss"],
                                                   rel=1e-5)
  tests = [json.loads((d / "report.json").read_text())["test"]
           for d in (one, two)]
  assert tests[1]["model"]["mse"] == pytest.approx(tests[0]["model"]["mse"],
                                                   rel=1e-4)
