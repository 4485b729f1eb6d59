"""The run's report: JSON for programs, Markdown and a plot for people."""

from __future__ import annotations

import csv
import platform
from pathlib import Path

import flax
import jax
import matplotlib
import numpy as np
import optax

from lstm_jax import rundir

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # noqa: E402  (after choosing Agg)

PLOT_FILE = "test_forecast.png"
PLOT_POINTS = 500


def environment() -> dict:
  return {"jax": jax.__version__, "flax": flax.__version__,
          "optax": optax.__version__, "python": platform.python_version(),
          "device": str(jax.devices()[0].device_kind)}


def write_report(workdir: Path, metrics: dict,
                 forecasts: dict[str, np.ndarray]) -> dict:
  """Writes report.json, report.md and the forecast plot; returns the JSON."""
  report = {
      "data": rundir.read_json(workdir / "data_summary.json"),
      "selected": rundir.read_json(workdir / "selected.json"),
      "fit": _without(rundir.read_json(workdir / "fit_summary.json"),
                      "history"),
      "test": metrics,
      "phase_seconds": _read_optional(workdir / "timings.json"),
      "environment": environment(),
  }
  rundir.write_json(workdir / "report.json", report)
  rundir.write_atomic(workdir / "report.md", _markdown(workdir, report))
  _plot(workdir / PLOT_FILE, forecasts, report["data"]["column"])
  return report


def _without(values: dict, key: str) -> dict:
  return {k: v for k, v in values.items() if k != key}


def _read_optional(path: Path) -> dict:
  return rundir.read_json(path) if path.exists() else {}


def _markdown(workdir: Path, report: dict) -> str:
  data, test, sel = report["data"], report["test"], report["selected"]
  lines = [
      "# lstm_jax run report", "",
      f"Data: {data['source']}, column `{data['column']}`, {data['rows']} rows.",
      "", "| split | rows | first row | first time | last time |",
      "| --- | ---: | ---: | --- | --- |",
  ]
  for name, s in data["splits"].items():
    lines.append(f"| {name} | {s['rows']} | {s['first_row']} | "
                 f"{s['first_time'] or ''} | {s['last_time'] or ''} |")
  lines += [
      "", f"Selected: units={sel['units']}, layers={sel['layers']}, "
      f"dropout={sel['dropout']}, learning rate {sel['learning_rate']}, "
      f"seed {sel['seed']} (search val_loss {sel['val_loss']:.5f}, "
      "scaled units).", "",
      f"## Test ({test['windows']} windows, original units)", "",
      f"Skill against persistence (1 - MSE/MSE_persistence): "
      f"{test['skill_vs_persistence']:.4f}", "",
      "| forecast | MSE | RMSE | MAE |", "| --- | ---: | ---: | ---: |",
  ]
  for name in ("model", "persistence"):
    m = test[name]
    lines.append(f"| {name} | {m['mse']:.6g} | {m['rmse']:.6g} | "
                 f"{m['mae']:.6g} |")
  lines += ["", "## Search (best 10 by validation loss)", "",
            _top_rows(workdir / "search_results.csv", 10), "",
            f"Plot: `{PLOT_FILE}`.", ""]
  return "\n".join(lines)


def _top_rows(path: Path, count: int) -> str:
  with open(path) as f:
    rows = list(csv.DictReader(f))[:count]
  header = list(rows[0]) if rows else []
  out = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
  out += ["| " + " | ".join(_short(v) for v in row.values()) + " |"
          for row in rows]
  return "\n".join(out)


def _short(text: str) -> str:
  """Floats to 5 significant digits; anything else as it is."""
  try:
    return text if float(text).is_integer() else f"{float(text):.5g}"
  except ValueError:
    return text


def _plot(path: Path, forecasts: dict[str, np.ndarray], column: str) -> None:
  tail = slice(-PLOT_POINTS, None)
  fig, ax = plt.subplots(figsize=(10, 4))
  rows = forecasts["rows"][tail]
  ax.plot(rows, forecasts["actual"][tail], label="actual", color="black", lw=1)
  ax.plot(rows, forecasts["model"][tail], label="LSTM", lw=1)
  ax.plot(rows, forecasts["persistence"][tail], label="persistence", lw=0.8,
          alpha=0.6)
  ax.set_xlabel("row")
  ax.set_ylabel(column)
  ax.set_title("Test split: one-step forecasts (last "
               f"{min(PLOT_POINTS, rows.shape[0])} windows)")
  ax.legend()
  fig.tight_layout()
  tmp = path.with_name(f".{path.name}.tmp.png")
  fig.savefig(tmp, dpi=100)
  plt.close(fig)
  tmp.replace(path)
