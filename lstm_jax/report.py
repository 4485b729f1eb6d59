"""The run's report: JSON for programs, Markdown and a plot for people."""

from __future__ import annotations

import csv
import platform
from pathlib import Path

import flax
import jax
import matplotlib
import optax

from lstm_jax import rundir

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # noqa: E402  (after choosing Agg)

PLOT_FILE = "test_forecast.png"
FORECASTERS = ("model", "persistence", "seasonal_naive", "linear_ar")
PLOT_POINTS = 500


def environment() -> dict:
  return {"jax": jax.__version__, "flax": flax.__version__,
          "optax": optax.__version__, "python": platform.python_version(),
          "device": str(jax.devices()[0].device_kind)}


def write_report(workdir: Path, metrics: dict, result: dict) -> dict:
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
  _plot(workdir / PLOT_FILE, result, report["data"]["column"])
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
      f"## Test ({test['windows']} windows, horizon {test['horizon']}, "
      f"target {test['target']}; original units)", "",
      f"**Skill against persistence** (1 - MSE/MSE_persistence): "
      f"{test['skill_vs_persistence']:.4f}; against the linear "
      f"autoregression: {test['skill_vs_linear_ar']:.4f}.", "",
      "| forecast | MSE | RMSE | MAE | MAPE % | sMAPE % | MASE | direction |"
      " MSE (normalised) | MAE (normalised) |",
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ]
  for name in FORECASTERS:
    if name not in test:
      continue
    m, z = test[name], test["normalised"][name]
    lines.append(
        f"| {name} | {m['mse']:.6g} | {m['rmse']:.6g} | {m['mae']:.6g} | "
        f"{m['mape']:.4g} | {m['smape']:.4g} | {m['mase']:.4g} | "
        f"{m['directional_accuracy']:.3f} | {z['mse']:.5g} | {z['mae']:.5g} |")
  lines += ["", "Diebold-Mariano tests of the model's squared errors "
            "(negative: the model's are smaller):", ""]
  for name, t in test["diebold_mariano"].items():
    lines.append(f"- {name.replace('_', ' ')}: statistic "
                 f"{t['statistic']:.3f}, p = {t['p_value']:.3g}")
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


def _plot(path: Path, result: dict, column: str) -> None:
  """The last PLOT_POINTS one-step forecasts of the test split."""
  tail = slice(-PLOT_POINTS, None)
  fig, ax = plt.subplots(figsize=(10, 4))
  rows = result["rows"][tail, 0]
  forecasts = result["forecasts"]
  ax.plot(rows, result["actual"][tail, 0], label="actual", color="black",
          lw=1)
  ax.plot(rows, forecasts["model"][tail, 0], label="LSTM", lw=1)
  ax.plot(rows, forecasts["persistence"][tail, 0], label="persistence",
          lw=0.8, alpha=0.6)
  ax.plot(rows, forecasts["linear_ar"][tail, 0], label="linear AR", lw=0.8,
          alpha=0.6)
  ax.set_xlabel("row")
  ax.set_ylabel(column)
  ax.set_title("Test split: one-step-ahead forecasts (last "
               f"{min(PLOT_POINTS, rows.shape[0])} windows)")
  ax.legend()
  fig.tight_layout()
  tmp = path.with_name(f".{path.name}.tmp.png")
  fig.savefig(tmp, dpi=100)
  plt.close(fig)
  tmp.replace(path)
