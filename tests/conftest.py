"""Shared fixtures: the real data folder beside the project, when present."""

import os
from pathlib import Path

import jax
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
  if not (SHARED_DATA / "ETTh1.csv").exists():
    pytest.skip(f"real data not found at {SHARED_DATA}")
  return SHARED_DATA


@pytest.fixture
def highest_precision():
  with jax.default_matmul_precision("highest"):
    yield


@pytest.fixture(scope="session", autouse=True)
def caches(tmp_path_factory):
  """Programs compiled again in later tests load from a cache instead; data
  files are prepared into a temporary cache (subprocesses inherit it)."""
  os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg_cache"))
  jax.config.update("jax_compilation_cache_dir",
                    str(tmp_path_factory.mktemp("jax_cache")))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  yield


class _MainRunner:
  """Runs the grid driver in this process, as `python -m experiments.grid`
  would with these arguments: (exit status, stderr); `stdout` keeps what
  the last run printed."""

  def __init__(self, capsys):
    self.capsys, self.stdout = capsys, ""

  def __call__(self, *argv):
    from absl import flags

    from experiments import grid as driver
    from experiments.config_flags import parse_flags

    flags.FLAGS.unparse_flags()
    try:
      parse_flags(["grid", *argv])
      driver.main([])
      status = 0
    except SystemExit as done:
      status = done.code
    finally:
      flags.FLAGS.unparse_flags()
    captured = self.capsys.readouterr()
    self.stdout = captured.out
    return status, captured.err


@pytest.fixture
def run_main(capsys):
  return _MainRunner(capsys)
