"""Runs killed with SIGKILL at four points end exactly as uninterrupted ones.

Each killed run is re-run with the same command until it completes; the
search table, the selection, the final parameters and the test metrics must
equal the uninterrupted run's bitwise (wall times aside), and no file may be
left half-written at any kill point.
"""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from lstm_jax.checkpoint import load_model

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--column=value", "--units_min=8", "--units_max=8", "--layers=1,2",
        "--dropouts=0,0.3", "--learning_rates=0.003,0.01",
        "--sequence_length=16", "--optimization_train_window=300",
        "--optimization_val_window=100", "--epochs=3", "--patience=3",
        "--lr_patience=1", "--batch_size=64", "--segment_steps=2",
        "--checkpoint_steps=3"]
TIMES = {"seconds", "compile_seconds"}


def _run(command, workdir, data, args=ARGS):
  env = {**os.environ, "PYTHONPATH": str(ROOT)}
  return subprocess.run(
      [sys.executable, *command, f"--data={data}", f"--workdir={workdir}",
       *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def _grid(workdir, data, args=ARGS):
  return _run(["-m", "experiments.grid"], workdir, data, args)


def _killed(point, n, workdir, data, args=ARGS):
  return _run([str(ROOT / "tests" / "kill_runner.py"), point, str(n), "--"],
              workdir, data, args)


@pytest.fixture(scope="module")
def series_csv(tmp_path_factory):
  path = tmp_path_factory.mktemp("data") / "wave.csv"
  t = np.arange(1500)
  values = np.sin(t / 12) + 0.1 * np.random.default_rng(1).normal(size=t.size)
  path.write_text("value\n" + "\n".join(f"{v:.6f}" for v in values) + "\n")
  return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  # One parent for every run: they share the compilation cache beside it.
  return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def uninterrupted(runs, series_csv):
  workdir = runs / "whole"
  done = _grid(workdir, series_csv)
  assert done.returncode == 0, done.stderr[-3000:]
  return _outcome(workdir)


def _without_times(rows):
  return [{k: v for k, v in row.items() if k not in TIMES} for row in rows]


def _outcome(workdir: Path) -> dict:
  with open(workdir / "search_results.csv") as f:
    table = _without_times(csv.DictReader(f))
  fit = json.loads((workdir / "fit_summary.json").read_text())
  params, _ = load_model(workdir / "checkpoints")
  return dict(
      table=table,
      selected=json.loads((workdir / "selected.json").read_text()),
      fit={k: v for k, v in fit.items() if k not in TIMES},
      params=[np.asarray(leaf) for leaf in jax.tree.leaves(params)],
      test=json.loads((workdir / "report.json").read_text())["test"])


def _assert_nothing_half_written(workdir: Path):
  for path in workdir.rglob("*"):
    if ".orbax-checkpoint-tmp" in str(path):
      continue  # an unfinished checkpoint: ignored, removed on the next start
    assert not path.name.startswith("."), f"temporary file left: {path}"
    if path.suffix == ".json":
      json.loads(path.read_text())
    elif path.suffix == ".csv":
      with open(path) as f:
        rows = list(csv.DictReader(f))
      assert rows and all(None not in row.values() for row in rows), path


@pytest.mark.parametrize("point,n", [
    ("segment", 5),       # inside the first search cell, in its 2nd epoch
    ("cell_file", 1),     # between cells: cell 1 written, its state kept
    ("fit_segment", 7),   # inside the fit, after two of its checkpoints
    ("fit_commit", 5),    # while a fit checkpoint is being written
])
def test_a_killed_run_ends_exactly_as_an_uninterrupted_one(
    point, n, uninterrupted, runs, series_csv):
  workdir = runs / f"{point}_{n}"
  killed = _killed(point, n, workdir, series_csv)
  assert killed.returncode == -9, killed.stderr[-3000:]
  _assert_nothing_half_written(workdir)
  if point.startswith("fit"):
    assert list((workdir / "fit_state").rglob("*")), "no fit checkpoint yet"
  done = _grid(workdir, series_csv)
  assert done.returncode == 0, done.stderr[-3000:]
  assert "resuming" in done.stderr or point == "cell_file"
  _assert_nothing_half_written(workdir)
  assert not list(workdir.rglob("*orbax-checkpoint-tmp*"))
  assert not (workdir / "fit_state").exists()
  assert not list((workdir / "search").glob("state_*"))

  resumed = _outcome(workdir)
  assert resumed["table"] == uninterrupted["table"]
  assert resumed["selected"] == uninterrupted["selected"]
  assert resumed["fit"] == uninterrupted["fit"]
  assert resumed["test"] == uninterrupted["test"]
  for a, b in zip(resumed["params"], uninterrupted["params"], strict=True):
    np.testing.assert_array_equal(a, b)


def test_a_killed_search_task_resumes_its_own_cell(uninterrupted, runs,
                                                   series_csv):
  # Two tasks of a job array, one cell each; segments sized by the clock
  # (the default) rather than fixed: results must not depend on them.
  workdir = runs / "sharded"
  args = [a for a in ARGS if not a.startswith("--segment_steps")]

  def task(index):
    return [*args, "--phase=search", "--num_shards=2", f"--shard_index={index}"]

  killed = _killed("segment", 2, workdir, series_csv, task(1))
  assert killed.returncode == -9, killed.stderr[-3000:]
  _assert_nothing_half_written(workdir)
  assert list((workdir / "search").glob("state_*")), "no cell checkpoint yet"
  again = _grid(workdir, series_csv, task(1))
  assert again.returncode == 0, again.stderr[-3000:]
  assert "resuming" in again.stderr
  assert not (workdir / "search_results.csv").exists()  # task 0 not done
  done = _grid(workdir, series_csv, task(0))
  assert done.returncode == 0, done.stderr[-3000:]
  _assert_nothing_half_written(workdir)
  assert not list((workdir / "search").glob("state_*"))
  with open(workdir / "search_results.csv") as f:  # the last task collected
    assert _without_times(csv.DictReader(f)) == uninterrupted["table"]
  assert json.loads((workdir / "selected.json").read_text()) == (
      uninterrupted["selected"])
