"""The whole job through its command line, on a real series and tiny grid."""

import csv
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lstm_jax.checkpoint import load_model

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--units_min=8", "--units_max=8", "--layers=1", "--dropouts=0,0.3",
        "--sequence_length=16", "--optimization_train_window=400",
        "--optimization_val_window=100", "--epochs=2", "--batch_size=128",
        "--patience=1"]


def grid(*argv, cwd=ROOT):
  env = {**os.environ, "PYTHONPATH": str(ROOT)}
  return subprocess.run([sys.executable, "-m", "experiments.grid", *argv],
                        cwd=cwd, env=env, capture_output=True, text=True,
                        timeout=600)


@pytest.fixture(scope="module")
def etth1_run(shared_data, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("runs") / "etth1"
  # A relative path, as typed: the run records where it points.
  data = os.path.relpath(shared_data / "ETTh1.csv", ROOT)
  args = [f"--data={data}", "--column=OT", f"--workdir={workdir}", *TINY]
  done = grid(*args)
  assert done.returncode == 0, done.stderr[-3000:]
  return workdir, args


def test_run_writes_every_output(etth1_run):
  workdir, _ = etth1_run
  for name in ("run.json", "config.json", "data_summary.json",
               "search_results.csv", "selected.json", "fit_summary.json",
               "report.json", "report.md", "test_forecast.png", "timings.json",
               "search_checks.json", "search_heatmap.png",
               "learning_curves.png", "test_residuals.png",
               "fit_metrics.jsonl"):
    assert (workdir / name).is_file(), name
  with open(workdir / "search_results.csv") as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 2  # one cell x two dropout rates
  for column in ("units", "layers", "dropout", "val_loss", "train_loss",
                 "epochs_run", "seconds"):
    assert column in rows[0]
  assert float(rows[0]["val_loss"]) <= float(rows[1]["val_loss"])
  selected = json.loads((workdir / "selected.json").read_text())
  assert selected["dropout"] == float(rows[0]["dropout"])

  report = json.loads((workdir / "report.json").read_text())
  test = report["test"]
  assert math.isfinite(test["model"]["rmse"]) and test["model"]["rmse"] > 0
  assert test["model"]["rmse"] ** 2 == pytest.approx(test["model"]["mse"])
  splits = report["data"]["splits"]
  assert test["windows"] == splits["test"]["rows"]
  assert splits["test"]["last_time"] == "2018-06-26 19:00:00"

  params, meta = load_model(workdir / "checkpoints")
  assert (meta["units"], meta["layers"]) == (8, 1)
  assert params["lstm_0"]["w_h"].shape == (8, 32)


def test_the_runner_up_is_fitted_and_tested_against(etth1_run):
  workdir, _ = etth1_run
  with open(workdir / "search_results.csv") as f:
    rows = list(csv.DictReader(f))
  runner_up = json.loads((workdir / "fit_summary_runner_up.json").read_text())
  assert runner_up["dropout"] == float(rows[1]["dropout"])  # the other rate
  winner, _ = load_model(workdir / "checkpoints")
  second, meta = load_model(workdir / "checkpoints_runner_up")
  assert meta["dropout"] == runner_up["dropout"]
  assert (winner["head"]["kernel"] != second["head"]["kernel"]).any()
  test = json.loads((workdir / "report.json").read_text())["test"]
  assert test["runner_up"]["mse"] != test["model"]["mse"]
  dm = test["diebold_mariano"]["vs_runner_up"]
  assert dm["windows"] == test["windows"] and 0 <= dm["p_value"] <= 1
  # The statistic's sign says whose squared errors are smaller.
  assert (dm["statistic"] < 0) == (test["model"]["mse"]
                                   < test["runner_up"]["mse"])
  assert "Runner-up (`runner_up` above): units=8" in (
      workdir / "report.md").read_text()


def test_without_runner_up_the_report_says_so(etth1_run, tmp_path):
  original, args = etth1_run
  workdir = tmp_path / "alone"
  shutil.copytree(original, workdir)
  for name in ("checkpoints_runner_up", "fit_summary_runner_up.json"):
    shutil.rmtree(workdir / name, ignore_errors=True)
    (workdir / name).unlink(missing_ok=True)
  args = [a for a in args if not a.startswith("--workdir")]
  done = grid(*args, f"--workdir={workdir}", "--nocompare_runner_up")
  assert done.returncode == 0, done.stderr[-3000:]
  assert not (workdir / "checkpoints_runner_up").exists()
  test = json.loads((workdir / "report.json").read_text())["test"]
  assert "runner_up" not in test
  assert set(test["diebold_mariano"]) == {"vs_persistence", "vs_linear_ar"}
  assert "Runner-up: not fitted" in (workdir / "report.md").read_text()


def test_rerun_skips_finished_work_and_changes_nothing(etth1_run):
  workdir, args = etth1_run
  before = (workdir / "search_results.csv").read_text()
  done = grid(*args)
  assert done.returncode == 0, done.stderr[-3000:]
  assert "done before, skipped" in done.stderr
  assert (workdir / "search_results.csv").read_text() == before


def test_other_settings_in_the_same_workdir_are_refused(etth1_run):
  workdir, args = etth1_run
  files = {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file()}
  done = grid(*args, "--epochs=3")
  assert done.returncode == 2
  lines = done.stderr.strip().splitlines()
  assert len(lines) == 1 and "config.epochs" in lines[0], done.stderr
  assert {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file()} == files


def test_widening_the_grid_reuses_finished_cells(etth1_run, tmp_path):
  original, args = etth1_run
  workdir = tmp_path / "widened"
  shutil.copytree(original, workdir)
  old_cell = (workdir / "search" / "cell_u8_l1.json").read_bytes()
  args = [a for a in args if not a.startswith("--workdir")]
  done = grid(*args, f"--workdir={workdir}", "--units_max=12",
              "--units_step=4")
  assert done.returncode == 0, done.stderr[-3000:]
  assert "units=8 layers=1: done before, skipped" in done.stderr
  assert (workdir / "search" / "cell_u8_l1.json").read_bytes() == old_cell
  with open(workdir / "search_results.csv") as f:
    rows = list(csv.DictReader(f))
  assert sorted({r["units"] for r in rows}) == ["12", "8"] and len(rows) == 4
  selected = json.loads((workdir / "selected.json").read_text())
  fitted = json.loads((workdir / "fit_summary.json").read_text())
  assert (fitted["units"], fitted["dropout"]) == (selected["units"],
                                                  selected["dropout"])
  _, meta = load_model(workdir / "checkpoints")
  assert meta["units"] == selected["units"]


def test_several_input_features_run_end_to_end(shared_data, tmp_path):
  workdir = tmp_path / "features"
  done = grid(f"--data={shared_data / 'ETTh1.csv'}", "--column=OT",
              "--features=HUFL,HULL,OT", "--nocompare_runner_up",
              f"--workdir={workdir}", *TINY)
  assert done.returncode == 0, done.stderr[-3000:]
  summary = json.loads((workdir / "data_summary.json").read_text())
  assert summary["features"] == ["OT", "HUFL", "HULL"]  # the target first
  assert len(summary["scaler"]["mean"]) == 3
  params, meta = load_model(workdir / "checkpoints")
  assert meta["features"] == ["OT", "HUFL", "HULL"]
  assert params["lstm_0"]["w_x"].shape == (3, 32)  # input width 3, 4 x 8 units
  report = json.loads((workdir / "report.json").read_text())
  assert math.isfinite(report["test"]["model"]["rmse"])
  metrics = (workdir / "fit_metrics.jsonl").read_text().splitlines()
  assert [json.loads(line)["epoch"] for line in metrics] == [1, 2]


def test_a_diverging_variant_is_in_the_table_with_its_epoch(shared_data,
                                                          tmp_path):
  workdir = tmp_path / "wild"
  args = [a for a in TINY if not a.startswith("--dropouts")]
  done = grid(f"--data={shared_data / 'ETTh1.csv'}", "--column=OT",
              "--phase=search", "--dropouts=0", "--learning_rates=1e-3,1e30",
              f"--workdir={workdir}", *args)
  assert done.returncode == 0, done.stderr[-3000:]
  with open(workdir / "search_results.csv") as f:
    rows = {float(r["learning_rate"]): r for r in csv.DictReader(f)}
  assert (rows[1e30]["status"], rows[1e30]["diverged_epoch"]) == (
      "diverged", "1")
  assert rows[1e-3]["status"] != "diverged" and (
      rows[1e-3]["diverged_epoch"] == "0")
  assert json.loads((workdir / "selected.json").read_text())[
      "learning_rate"] == 1e-3


def test_horizon_target_and_season_run_end_to_end(shared_data, tmp_path):
  workdir = tmp_path / "horizon"
  done = grid(f"--data={shared_data / 'ETTh1.csv'}", "--column=OT",
              "--horizon=2", "--target=diff", "--season=24",
              "--nocompare_runner_up", f"--workdir={workdir}", *TINY)
  assert done.returncode == 0, done.stderr[-3000:]
  report = json.loads((workdir / "report.json").read_text())
  test = report["test"]
  assert (test["horizon"], test["target"]) == (2, "diff")
  assert test["windows"] == report["data"]["splits"]["test"]["rows"] - 1
  for name in ("model", "persistence", "seasonal_naive", "linear_ar"):
    assert len(test[name]["per_step"]) == 2, name
    assert math.isfinite(test[name]["mse"]), name
  assert set(test["diebold_mariano"]) == {
      "vs_persistence", "vs_seasonal_naive", "vs_linear_ar"}
  assert "model beats persistence" in done.stderr or (
      "does not beat persistence" in done.stderr)
  _, meta = load_model(workdir / "checkpoints")
  assert (meta["horizon"], meta["target"]) == (2, "diff")
  text = (workdir / "report.md").read_text()
  row = next(line for line in text.splitlines() if line.startswith("| 2 | "))
  model_rmse = float(row.split("|")[2])  # step 2, the model's column
  assert model_rmse == pytest.approx(test["model"]["per_step"][1]["rmse"],
                                     rel=1e-5)
  scaler = report["data"]["scaler"]
  assert (f"`OT` mean {scaler['mean'][0]:.6g}, std {scaler['std'][0]:.6g}"
          in text)
  assert f"jax {report['environment']['jax']}" in text
  # Persistence stays at the origin: its direction is undefined, not 0.
  assert test["persistence"]["directional_accuracy"] is None
  assert "| persistence |" in text and " n/a |" in text


@pytest.mark.parametrize("argv,message", [
    (["--units_min=64", "--units_max=32"], "--units_min=64 is larger"),
    (["--preset=huge"], "--preset='huge' is unknown"),
    (["--dropouts=0.1,0.1"], "--dropouts=0.1,0.1 repeats a rate"),
    (["--data=missing.csv", "--column=x"], "missing.csv: no such file"),
    (["--data=", "--column=x"], "--data is empty"),
    (["--column=x"], "--column and --features need --data"),
    (["--features=a"], "--column and --features need --data"),
    (["--phase=fit"], "selected.json: missing; run --phase=search first"),
    (["--phase=evaluate"], "checkpoints: missing; run --phase=fit first"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, run_main, argv, message):
  status, err = run_main(f"--workdir={tmp_path / 'run'}", *argv)
  assert status == 2
  assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
  assert message in err
  assert not (tmp_path / "run").exists()


def predict(*argv):
  env = {**os.environ, "PYTHONPATH": str(ROOT)}
  return subprocess.run([sys.executable, "-m", "experiments.predict", *argv],
                        cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=600)


def test_forecasting_forward_from_the_run_directory(etth1_run, shared_data,
                                                    tmp_path):
  import jax.numpy as jnp
  import numpy as np

  from lstm_jax.data import Scaler, read_series
  from lstm_jax.model import LSTMForecaster
  from lstm_jax.predict import forecast

  workdir, _ = etth1_run
  done = predict(f"--workdir={workdir}")
  assert done.returncode == 0, done.stderr[-3000:]
  with open(workdir / "forecast.csv") as f:
    rows = list(csv.DictReader(f))
  assert [r["time"] for r in rows] == ["2018-06-26 20:00:00"]  # an hour on
  # The same number by hand: the model on the last 16 scaled rows.
  params, meta = load_model(workdir / "checkpoints")
  series = read_series(str(shared_data / "ETTh1.csv"), "OT")
  scaler = Scaler(**meta["scaler"])
  window = scaler.transform(np.asarray(series.values[-16:], np.float64))
  out = LSTMForecaster(8, 1).apply({"params": params},
                                   jnp.asarray(window)[None])
  expected = scaler.inverse(np.asarray(out))[0, 0]
  assert float(rows[0]["forecast"]) == pytest.approx(expected, rel=1e-5)
  # A shorter copy of the file: the forecast follows its last row.
  lines = (shared_data / "ETTh1.csv").read_text().splitlines()
  short = tmp_path / "short.csv"
  short.write_text("\n".join(lines[:12001]) + "\n")
  ahead = forecast(workdir, str(short), tmp_path / "cache")
  assert ahead[0]["time"] == "2017-11-13 00:00:00"  # its last row + 1 hour
  assert ahead[0]["forecast"] != pytest.approx(expected)


@pytest.mark.parametrize("name,column,target,times", [
    ("ETTh1.csv", "OT", "diff", ["2018-06-26 20:00:00", "2018-06-26 21:00:00",
                                 "2018-06-26 22:00:00"]),
    ("XAU_1d.csv", "Close", "log_return", [  # a day on, weekends or not
        "2025-06-07 00:00:00", "2025-06-08 00:00:00", "2025-06-09 00:00:00"]),
])
def test_forecasting_changes_several_steps_ahead(shared_data, tmp_path, name,
                                                 column, target, times):
  import jax.numpy as jnp
  import numpy as np

  from lstm_jax.data import Scaler, read_series
  from lstm_jax.model import LSTMForecaster
  from lstm_jax.predict import forecast

  workdir = tmp_path / "changes"
  done = grid(f"--data={shared_data / name}", f"--column={column}",
              f"--workdir={workdir}", f"--target={target}", "--horizon=3",
              *TINY)
  assert done.returncode == 0, done.stderr[-3000:]
  rows = forecast(workdir)
  assert [r["time"] for r in rows] == times
  # By hand: the last 16 changes, scaled, through the model; the three
  # forecast changes unscaled and accumulated from the last level.
  params, meta = load_model(workdir / "checkpoints")
  levels = np.asarray(read_series(str(shared_data / name), column).values[
      :, 0], np.float64)
  changes = np.diff(levels if target == "diff" else np.log(levels))[-16:]
  scaler = Scaler(**meta["scaler"])
  window = scaler.transform(changes[:, None])
  out = LSTMForecaster(8, 1, 3).apply({"params": params},
                                      jnp.asarray(window, jnp.float32)[None])
  steps = np.cumsum(scaler.inverse(np.asarray(out, np.float64))[0])
  expected = (levels[-1] + steps if target == "diff"
              else levels[-1] * np.exp(steps))
  np.testing.assert_allclose([r["forecast"] for r in rows], expected,
                             rtol=1e-5)


@pytest.mark.parametrize("argv,message", [
    ([], "--workdir is required"),
    (["--workdir=nowhere"], "nowhere: no such run directory"),
])
def test_predict_bad_input(argv, message):
  done = predict(*argv)
  assert done.returncode == 2
  assert done.stderr.strip().splitlines()[-1].startswith("error: ")
  assert message in done.stderr


def test_predict_when_the_runs_data_has_moved(etth1_run, tmp_path):
  from lstm_jax.data.errors import DataError
  from lstm_jax.predict import forecast

  workdir, _ = etth1_run
  summary = json.loads((workdir / "data_summary.json").read_text())
  assert Path(summary["source"]).is_absolute()  # found from any directory
  moved = tmp_path / "run"
  shutil.copytree(workdir, moved)
  summary["source"] = str(tmp_path / "gone.csv")
  (moved / "data_summary.json").write_text(json.dumps(summary))
  with pytest.raises(DataError, match="gone.csv: the run's data is no "
                     "longer there; give the series to continue with --data"):
    forecast(moved)


def test_predict_with_a_file_lacking_the_column(etth1_run, tmp_path):
  workdir, _ = etth1_run
  other = tmp_path / "other.csv"
  other.write_text("a,b\n1,2\n3,4\n")
  done = predict(f"--workdir={workdir}", f"--data={other}",
                 f"--cache_dir={tmp_path / 'cache'}")
  assert done.returncode == 2
  assert done.stderr.strip().splitlines()[-1] == (
      f"error: {other}: no column 'OT', which the run's model reads (it was "
      "trained on OT); the file's columns are a, b; give a file with those "
      "columns")


def test_predict_reads_a_newer_file_with_missing_values(etth1_run,
                                                        shared_data, tmp_path):
  from lstm_jax.data.errors import DataError
  from lstm_jax.predict import forecast

  workdir, _ = etth1_run
  lines = (shared_data / "ETTh1.csv").read_text().splitlines()
  lines[-1] = lines[-1].rsplit(",", 1)[0] + ","  # the last OT cell empty
  newer = tmp_path / "newer.csv"
  newer.write_text("\n".join(lines) + "\n")
  with pytest.raises(DataError, match="choose --missing=ffill"):
    forecast(workdir, str(newer), tmp_path / "cache")
  filled = forecast(workdir, str(newer), tmp_path / "cache", missing="ffill")
  # The last row now repeats the one before: as a file ending a row earlier
  # with that row written twice.
  lines[-1] = lines[-1].rsplit(",", 1)[0] + "," + lines[-2].rsplit(",")[-1]
  repeated = tmp_path / "repeated.csv"
  repeated.write_text("\n".join(lines) + "\n")
  assert filled == forecast(workdir, str(repeated), tmp_path / "cache")


@pytest.mark.parametrize("damaged,message", [
    ("data_summary.json", "data_summary.json: damaged, not readable as JSON"),
    ("checkpoints/*/meta/metadata", ": damaged checkpoint (JSONDecodeError"),
    ("checkpoints/*/params/d/*", ": damaged checkpoint ("),
])
def test_predict_from_a_damaged_run_is_one_line(etth1_run, tmp_path,
                                                damaged, message):
  workdir, _ = etth1_run
  copy = tmp_path / "run"
  shutil.copytree(workdir, copy)
  for path in copy.glob(damaged):
    path.write_text("{")
  done = predict(f"--workdir={copy}")
  assert done.returncode == 2
  # (When array data is damaged, TensorStore's reader threads may still print
  # "Event loop is closed" as the process exits, after this line.)
  [line] = [x for x in done.stderr.splitlines() if x.startswith("error: ")]
  assert line.startswith(f"error: {copy}") and message in line


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, run_main):
  workdir = tmp_path / "never"
  status, _ = run_main(f"--workdir={workdir}", "--dry_run")
  assert status == 0 and not workdir.exists()
  out = run_main.stdout
  lines = [line.split() for line in out.splitlines()[2:6]]
  # Demo grid: units 16, 32 x layers 1, 2; 4H(I + H + 1) per layer + head.
  assert [(int(r[0]), int(r[1]), int(r[2])) for r in lines] == [
      (16, 1, 1169), (16, 2, 1169 + 4 * 16 * 33), (32, 1, 4385),
      (32, 2, 4385 + 4 * 32 * 65)]
  assert "4 cells x 4 variants" in out
