"""Bad files, flags and run directories: one line, status 2, nothing lost.

Every case runs the driver in this process against the directory of a
finished run and checks that not one byte of it changed.
"""

import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--column=value", "--units_min=8", "--units_max=8", "--layers=1",
        "--dropouts=0,0.3", "--sequence_length=16",
        "--optimization_train_window=300", "--optimization_val_window=80",
        "--epochs=2", "--batch_size=64", "--nocompare_runner_up"]


def _hourly(rows: int, values=None) -> str:
  times = np.datetime64("2024-01-01T00:00") + np.arange(rows).astype(
      "timedelta64[h]")
  values = np.sin(np.arange(rows) / 9.0) if values is None else values
  return "date,value\n" + "".join(
      f"{str(t).replace('T', ' ')}:00,{v:.5f}\n"
      for t, v in zip(times, values, strict=True))


def _grid(*argv):
  env = {**os.environ, "PYTHONPATH": str(ROOT)}
  return subprocess.run([sys.executable, "-m", "experiments.grid", *argv],
                        cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=600)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
  """A finished run: (its data file, its directory, its arguments)."""
  base = tmp_path_factory.mktemp("finished")
  data = base / "series.csv"
  data.write_text(_hourly(800))
  workdir = base / "run"
  args = [f"--data={data}", f"--workdir={workdir}", *TINY]
  done = _grid(*args)
  assert done.returncode == 0, done.stderr[-3000:]
  return data, workdir, args


def _snapshot(workdir: Path) -> dict:
  return {str(p.relative_to(workdir)): (hashlib.sha256(p.read_bytes())
                                        .hexdigest(), p.stat().st_mtime_ns)
          for p in sorted(workdir.rglob("*")) if p.is_file()}


def _replace(args: list[str], *changes: str) -> list[str]:
  names = {c.split("=")[0] for c in changes}
  return [a for a in args if a.split("=")[0] not in names] + list(changes)


FILES = [  # (file content, message)
    ("", "the file is empty"),
    ("date,value\n", "a header but no rows"),
    ("date,valeu\n2024-01-01 00:00:00,1\n", "no column 'value' (--column); "
     "the columns are date, valeu; did you mean --column=valeu?"),
    (_hourly(3) + "2024-01-01 03:00:00,abc\n", "file line 5: 'abc' is not a "
     "number; fix or remove that row"),
    (_hourly(2) + "2024-01-01 02:00:00,\n2024-01-01 03:00:00,null\n"
     "2024-01-01 04:00:00,-\n2024-01-01 05:00:00,NaN\n",
     "4 missing values (empty, NaN, NA, null or - cells) in column 'value' (4), "
     "first at file lines 4, 5, 6, 7; fill them in, or choose "
     "--missing=ffill"),
    (_hourly(2) + "2024-01-01 02:00:00,inf\n", "column 'value' has infinite "
     "values (first at file line 4"),
    (_hourly(2) + "2024-01-01 02:00:00,1e39\n", "holds 1e+39 at file line 4, "
     "beyond float32's range"),
    ("date;value\n2024-01-01 00:00:00;1,5\n", "'1,5' is not a number; the "
     "file seems to use a decimal comma: pass --decimal=,"),
    ("date,value\n2024-01-01 01:00:00,1\n2024-01-01 00:00:00,2\n",
     "time column 'date' goes back at file line 3"),
    ("date,value\n2024-01-01 00:00:00,1\n2024-01-01 00:00:00,2\n",
     "time column 'date' repeats at file line 3"),
    ("date,value\n2024-01-01 00:00:00,1\n,2\n", "time column 'date' is empty "
     "at file line 3"),
    (_hourly(40) + "notadate,1\n" + _hourly(40).split("\n", 1)[1],
     "time column 'date', file line 42: 'notadate' is not a time like "
     "'%Y-%m-%d %H:%M:%S'"),
    ("date,value,value\n2024-01-01 00:00:00,1,2\n", "the header names "
     "column 'value' 2 times (columns 2, 3); rename all but one"),
    (_hourly(3) + "\n\n" + _hourly(5).split("\n", 4)[4] + "2024-01-01 05:00:00"
     ",x\n", "file line 9: 'x' is not a number"),  # blank lines counted
    (_hourly(3) + "\n" + _hourly(5).split("\n", 4)[4] + "2024-01-01 05:00:00,"
     "\n2024-01-01 05:00:00,1\n", "repeats at file line 9"),
    (_hourly(3) + "2024-01-01 03:00:00, \n", "column 'value', file line 5: a "
     "cell of spaces alone; leave it empty (a missing value) or write a "
     "number"),
    ("sep=,\ndate,value\n2024-01-01 00:00:00,1\n", "the first line 'sep=' "
     "is a spreadsheet's hint, not a header; delete that line"),
    ("1.5,2.5\n2.5,3.5\n", "the first row holds numbers, not column names; "
     "add a header row"),
    ("date value\n2024-01-01 1\n", "one column named 'date value': are the "
     "columns separated by spaces?"),
    (_hourly(20), "20 rows are too few for --sequence_length=16"),
    (_hourly(800, np.full(800, 3.0)), "column 'value' is constant (3) in the "
     "training split"),
]


@pytest.mark.parametrize("content,message", FILES)
def test_a_bad_file_is_one_line_and_changes_nothing(
    finished, tmp_path, run_main, content, message):
  _, workdir, args = finished
  bad = tmp_path / "bad.csv"
  bad.write_text(content)
  before = _snapshot(workdir)
  status, err = run_main(*_replace(args, f"--data={bad}"))
  assert (status, err.count("\n")) == (2, 1), err
  assert err.startswith(f"error: {bad}: ") and message in err
  assert _snapshot(workdir) == before


FLAGS = [  # (changed flags, message)
    (["--data=/nowhere/series.csv"], "/nowhere/series.csv: no such file"),
    (["--data=/"], "/: is a directory"),
    (["--units_min=64", "--units_max=32"], "--units_min=64 is larger than "
     "--units_max=32"),
    (["--units_step=0"], "--units_step=0 must be at least 1"),
    (["--dropouts=0,1"], "--dropouts=0.0,1.0: each rate must lie in [0, 1)"),
    (["--dropouts=-0.1"], "--dropouts=-0.1: each rate must lie in [0, 1)"),
    (["--layers=0,1"], "--layers=0,1: every depth must be at least 1"),
    (["--optimization_train_window=5000"], "--optimization_train_window=5000 "
     "does not fit: the training split has room for 544 windows"),
    (["--batch_size=0"], "--batch_size=0 must be at least 1"),
    (["--epochs=0"], "--epochs=0 must be at least 1"),
    (["--epochs=-3"], "--epochs=-3 must be at least 1"),
    (["--preset=huge"], "--preset='huge' is unknown; choose one of"),
    (["--sequence_length=0"], "--sequence_length=0 must be at least 1"),
    (["--horizon=0"], "--horizon=0 must be at least 1"),
    (["--season=681"], "--season=681 is longer than the 680 rows before the "
     "test split; the seasonal baseline needs a whole season"),
    (["--unknown_flag=1"], "Unknown command line flag 'unknown_flag'"),
    (["units=64"], "unexpected argument 'units=64': every setting is a flag"),
    (["--distributed"], "--distributed: JAX's multi-process runtime did not "
     "start (coordinator_address should be defined.)"),
    (["--distributed", "--coordinator_address=nohost", "--num_processes=2",
      "--process_id=0"], "--coordinator_address=nohost needs the form "
     "HOST:PORT"),
    (["--seed=4294967296"], "--seed and --seeds must lie in [0, 2**32)"),
    (["--epochs=many"], "flag --epochs=many: invalid literal for int()"),
    (["--missing=sometimes"], "flag --missing=sometimes: value should be one "
     "of <error|ffill|interpolate|drop>"),
    (["--phase=later"], "flag --phase=later: value should be one of"),
    (["--epochs=3"], "holds a run with other settings (config.epochs "
     "differ); use a new --workdir or the original settings"),
]


@pytest.mark.parametrize("changes,message", FLAGS)
def test_a_bad_flag_is_one_line_and_changes_nothing(
    finished, run_main, changes, message):
  _, workdir, args = finished
  before = _snapshot(workdir)
  status, err = run_main(*_replace(args, *changes))
  assert (status, err.count("\n")) == (2, 1), err
  assert err.startswith("error: ") and message in err
  assert _snapshot(workdir) == before


def test_an_unreadable_file_is_named(finished, run_main, monkeypatch):
  # As root (CI) permissions do not stop a read: the error is injected.
  import lstm_jax.data.prepare as prepare

  data, workdir, args = finished
  fresh = data.with_name("fresh.csv")  # not prepared yet
  shutil.copy(data, fresh)

  def refuse(path, *rest, **options):
    if Path(path) == fresh:
      raise PermissionError(13, "Permission denied", str(path))
    return open(path, *rest, **options)

  monkeypatch.setattr(prepare, "open", refuse, raising=False)
  before = _snapshot(workdir)
  status, err = run_main(*_replace(args, f"--data={fresh}"))
  assert status == 2 and err.count("\n") == 1
  assert f"{fresh}: cannot be read (Permission denied); check its " in err
  assert _snapshot(workdir) == before


@pytest.mark.parametrize("damaged", ["run.json", "search/cell_u8_l1.json"])
def test_a_damaged_file_in_the_run_directory_is_named(finished, tmp_path,
                                                      run_main, damaged):
  _, workdir, args = finished
  copy = tmp_path / "run"
  shutil.copytree(workdir, copy)
  (copy / damaged).write_text('{"units": 8,')  # cut short by hand
  if damaged.startswith("search/"):  # the table is remade from the cells
    (copy / "search_results.csv").unlink()
  before = _snapshot(copy)
  status, err = run_main(*_replace(args, f"--workdir={copy}"))
  assert (status, err.count("\n")) == (2, 1), err
  assert err.startswith(f"error: {copy / damaged}: damaged, not readable as "
                        "JSON")
  after = _snapshot(copy)  # the same bytes (some rewritten as they were)
  assert {k: v[0] for k, v in after.items()} == {
      k: v[0] for k, v in before.items()}


def test_a_file_gone_from_the_run_directory_is_named(finished, tmp_path,
                                                     run_main):
  _, workdir, args = finished
  copy, gone = tmp_path / "run", "search_results.csv"
  shutil.copytree(workdir, copy)
  (copy / gone).unlink()
  status, err = run_main(*_replace(args, f"--workdir={copy}",
                                   "--phase=evaluate"))
  assert (status, err.count("\n")) == (2, 1), err
  assert err == (f"error: {copy / gone}: missing from the run directory; run "
                 "the phase that writes it again (--phase=all redoes what is "
                 "missing)\n")


def test_a_run_directory_that_cannot_be_written(finished, tmp_path, run_main,
                                                monkeypatch):
  _, workdir, args = finished
  blocker = tmp_path / "a_file"
  blocker.write_text("")
  status, err = run_main(*_replace(args, f"--workdir={blocker / 'run'}"))
  assert status == 2 and "cannot create the run directory (Not a " in err
  # Not writable, though it exists (injected: root may write anywhere).
  real = tempfile.mkstemp

  def refuse(*args, dir=None, **kwargs):
    if Path(dir) == workdir:
      raise PermissionError(13, "Permission denied")
    return real(*args, dir=dir, **kwargs)

  monkeypatch.setattr(tempfile, "mkstemp", refuse)
  before = _snapshot(workdir)
  status, err = run_main(*args)
  assert (status, err.count("\n")) == (2, 1)
  assert f"error: {workdir}: not writable (Permission denied)" in err
  assert _snapshot(workdir) == before


@pytest.fixture
def file_size_limit():
  """Limits the size of any file this process writes, as a full disk would
  stop it (writes past the limit fail with EFBIG)."""
  previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
  soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)

  def limit(size):
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))

  yield limit
  resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
  signal.signal(signal.SIGXFSZ, previous)


REWRITTEN = {"data_summary.json", "config.json", "timings.json",
             "report.json", "report.md"}  # whole again by every run


@pytest.mark.parametrize("changes,size,failing", [
    (["--phase=evaluate"], 3000, "report.json"),  # a report, then a plot
    (["--phase=evaluate"], 12000, "test_forecast.png"),
    (["--phase=search", "--units_max=16", "--units_step=8"], 1200,
     "search/cell_u16_l1.json"),  # a new cell of a widened grid
])
def test_a_full_disk_stops_the_run_and_keeps_what_was_written(
    finished, tmp_path, run_main, file_size_limit, changes, size, failing):
  _, original, args = finished
  workdir = tmp_path / "run"
  shutil.copytree(original, workdir)
  args = _replace(args, f"--workdir={workdir}", *changes)
  before = _snapshot(workdir)
  file_size_limit(size)
  status, err = run_main(*args)
  file_size_limit(resource.RLIM_INFINITY)
  assert (status, err.count("\n")) == (2, 1), err
  assert err == (f"error: {workdir / failing}: could not be written (File "
                 "too large); free disk space, then run the same command "
                 "again (results written before are intact)\n")
  after = _snapshot(workdir)
  for name, (digest, _) in before.items():  # rewritten whole, or untouched
    if name in REWRITTEN and name.endswith(".json"):
      json.loads((workdir / name).read_text())
    elif name not in REWRITTEN:
      assert after[name][0] == digest, name
  if failing in before:  # the previous version stands
    assert after[failing][0] == before[failing][0]
  else:
    assert failing not in after
  assert not [p for p in workdir.rglob(".*") if p.is_file()]  # no leftovers
  status, err = run_main(*args)
  assert status == 0, err


def test_time_gaps_get_one_warning_line(tmp_path, run_main, caplog):
  # Hourly bars on weekdays only: 19 weekends between them, each one gap.
  times = np.arange(np.datetime64("2024-01-01T00"), np.datetime64(
      "2024-05-20T00"), np.timedelta64(1, "h"))
  times = times[np.is_busday(times.astype("datetime64[D]"))]
  values = np.sin(np.arange(times.size) / 9.0)
  path = tmp_path / "weekdays.csv"
  path.write_text("time,value\n" + "".join(
      f"{str(t).replace('T', ' ')}:00,{v:.5f}\n"
      for t, v in zip(times, values, strict=True)))
  status, err = run_main(f"--data={path}", "--column=value", "--dry_run",
                         f"--workdir={tmp_path / 'run'}")
  assert status == 0, err
  warnings = [r.getMessage() for r in caplog.records
              if "gaps in the time index" in r.getMessage()]
  assert warnings == [
      f"{path}: 19 gaps in the time index (usual step 1:00:00, largest gap "
      "2 d 1:00:00); windows read across them, as is normal for market "
      "closures"]


def test_ctrl_c_stops_soon_saved_and_names_the_command(tmp_path):
  data = tmp_path / "long.csv"
  data.write_text(_hourly(3000))
  workdir = tmp_path / "run"
  # Long epochs of a long fit, after a quick search; no checkpoint is due.
  args = [f"--data={data}", f"--workdir={workdir}",
          *_replace(TINY, "--epochs=500", "--optimization_train_window=50",
                    "--patience=500", "--segment_steps=2",
                    "--checkpoint_steps=1000000")]
  searched = _grid(*args, "--phase=search")
  assert searched.returncode == 0, searched.stderr[-3000:]
  env = {**os.environ, "PYTHONPATH": str(ROOT)}
  command = [*args, "--phase=fit"]
  run = subprocess.Popen(
      [sys.executable, "-m", "experiments.grid", *command], cwd=ROOT,
      env=env, text=True, stderr=subprocess.PIPE)
  log = []
  for line in run.stderr:  # until the fit has trained an epoch
    log.append(line)
    if "fit epoch 1:" in line:
      break
  asked = time.monotonic()
  run.send_signal(signal.SIGINT)
  err = "".join(log) + run.communicate(timeout=60)[1]
  seconds = time.monotonic() - asked
  assert run.returncode == 130, err
  assert seconds < 6
  last = err.strip().splitlines()[-1]
  assert last == ("interrupted; finished results and the last checkpoint "
                  "are saved. To resume: python -m experiments.grid "
                  + " ".join(command))
  saved = list((workdir / "fit_state").glob("*/[0-9]*"))
  assert len(saved) == 1  # the one the stop request made


@pytest.mark.parametrize("after", [0.5, 1.5])
def test_ctrl_c_while_starting_is_not_lost(tmp_path, after):
  data = tmp_path / "series.csv"
  data.write_text(_hourly(800))
  args = [f"--data={data}", f"--workdir={tmp_path / 'run'}", *TINY]
  env = {**os.environ, "PYTHONPATH": str(ROOT)}
  run = subprocess.Popen([sys.executable, "-m", "experiments.grid", *args],
                         cwd=ROOT, env=env, text=True, stderr=subprocess.PIPE)
  time.sleep(after)  # importing: before any of the program's own work
  run.send_signal(signal.SIGINT)
  err = run.communicate(timeout=120)[1]
  assert run.returncode == 130, err
  assert "Traceback" not in err and "Exception ignored" not in err, err
  assert err.strip().splitlines()[-1].startswith("interrupted; ")
  assert not (tmp_path / "run" / "search_results.csv").exists()


def test_a_full_disk_while_preparing_the_data(tmp_path, run_main,
                                              file_size_limit):
  data = tmp_path / "series.csv"
  data.write_text(_hourly(3000))  # its prepared copy: 12 kB and more
  cache = tmp_path / "cache"
  file_size_limit(4000)
  status, err = run_main(f"--data={data}", "--column=value", "--dry_run",
                         f"--cache_dir={cache}", f"--workdir={tmp_path / 'r'}")
  file_size_limit(resource.RLIM_INFINITY)
  assert (status, err.count("\n")) == (2, 1), err
  assert err == (f"error: {cache}: cannot write the prepared copy of {data} "
                 "(File too large); free space there or choose another "
                 "--cache_dir\n")
  assert list(cache.iterdir()) == []  # nothing half-written is left
  status, err = run_main(f"--data={data}", "--column=value", "--dry_run",
                         f"--cache_dir={cache}", f"--workdir={tmp_path / 'r'}")
  assert status == 0, err


def _ticks() -> str:
  # Milliseconds, as some trading terminals export them: not read as times.
  rows = [f"{d:02d}.01.2024 {h:02d}:00:00.000,{(d * 24 + h) % 17}"
          for d in range(1, 29) for h in range(24)]
  rows[100], rows[101] = rows[101], rows[100]  # out of order, unseen
  return "Time,value\n" + "\n".join(rows) + "\n"


def _date_and_time_apart() -> str:
  # MetaTrader's export: the date repeats on every row of a day.
  return "Date,Time,value\n" + "".join(
      f"2024.01.{d:02d},{h:02d}:00,{(d * 24 + h) % 17}\n"
      for d in range(1, 29) for h in range(24))


@pytest.mark.parametrize("content,warning", [
    (_ticks(), "column 'Time' holds times like '01.01.2024 00:00:00.000' in "
     "no format lstm_jax reads, so the rows' time order is not checked; make "
     "sure they are in time order"),
    (_date_and_time_apart(), "columns 'Date' and 'Time' hold the date and the "
     "time of day apart; lstm_jax reads one time column, so the rows' time "
     "order is not checked: join them into one to have it checked"),
])
def test_times_that_go_unchecked_are_named_in_a_warning(
    tmp_path, run_main, caplog, content, warning):
  data = tmp_path / "series.csv"
  data.write_text(content)
  status, err = run_main(f"--data={data}", "--column=value", "--dry_run",
                         f"--workdir={tmp_path / 'run'}")
  assert status == 0, err
  assert [r.getMessage() for r in caplog.records
          if "not checked" in r.getMessage()] == [f"{data}: {warning}"]
