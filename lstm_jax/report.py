"""The run's report: JSON for programs, Markdown and a plot for people."""

from __future__ import annotations

import platform
from pathlib import Path

import flax
import jax
import matplotlib
import numpy as np
import optax

from lstm_jax import rundir
from lstm_jax.fit import RUNNER_UP

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # noqa: E402  (after choosing Agg)

PLOT_FILE = "test_forecast.png"
HEATMAP_FILE = "search_heatmap.png"
CURVES_FILE = "learning_curves.png"
RESIDUALS_FILE = "test_residuals.png"
FORECASTERS = ("model", "runner_up", "persistence", "seasonal_naive",
               "linear_ar")
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
      "fit": rundir.read_json(workdir / "fit_summary.json"),
      "checks": _read_optional(workdir / "search_checks.json") or [],
      "runner_up": (_read_optional(workdir / RUNNER_UP.summary)
                    if "runner_up" in metrics else None),
      "search": rundir.read_csv(workdir / "search_results.csv"),
      "test": metrics,
      "phase_seconds": _read_optional(workdir / "timings.json"),
      "environment": environment(),
  }
  rundir.write_json(workdir / "report.json", report)
  rundir.write_atomic(workdir / "report.md", _markdown(workdir, report))
  _plot(workdir / PLOT_FILE, result, report["data"]["column"])
  _heatmap(workdir / HEATMAP_FILE, _search_rows(workdir))
  _curves(workdir / CURVES_FILE, _search_rows(workdir),
          rundir.read_json(workdir / "fit_summary.json")["history"])
  _residuals(workdir / RESIDUALS_FILE, result, report["data"]["column"])
  return report


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
  scaler = data["scaler"]
  lines += ["", "Scaled with the training split's statistics: " + ", ".join(
      f"`{name}` mean {mean:.6g}, std {std:.6g}" for name, mean, std in zip(
          data["features"], scaler["mean"], scaler["std"], strict=True))
      + "."]
  env = report["environment"]
  lines += ["", "Ran with " + ", ".join(
      f"{k} {v}" for k, v in env.items() if k != "device")
      + f" on {env['device']}."]
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
        f"{_share(m['directional_accuracy'])} | {z['mse']:.5g} | "
        f"{z['mae']:.5g} |")
  if test["model"]["per_step"]:
    lines += ["", "RMSE per forecast step (original units):", "",
              "| step | " + " | ".join(n for n in FORECASTERS if n in test)
              + " |", "| ---: |" + " ---: |" * sum(
                  n in test for n in FORECASTERS)]
    for h in range(len(test["model"]["per_step"])):
      lines.append(f"| {h + 1} | " + " | ".join(
          f"{test[n]['per_step'][h]['rmse']:.6g}" for n in FORECASTERS
          if n in test) + " |")
  lines += _runner_up_lines(report["runner_up"])
  lines += ["", "Diebold-Mariano tests of the model's squared errors "
            "(negative: the model's are smaller):", ""]
  for name, t in test["diebold_mariano"].items():
    lines.append(f"- {name.replace('_', ' ')}: statistic "
                 f"{t['statistic']:.3f}, p = {t['p_value']:.3g}")
  if report["checks"]:
    lines += ["", "## Checks", ""] + [f"- {note}" for note in report["checks"]]
  fit = report["fit"]
  lines += ["", f"## Final fit ({fit['train_windows']} training windows, "
            f"{fit.get('samples_per_parameter', '?')} per parameter; "
            f"{fit['epochs_run']} epochs, best {fit['best_epoch']}, "
            f"{fit['status']})", "",
            "| epoch | train loss | val loss | learning rate |",
            "| ---: | ---: | ---: | ---: |"]
  for h in fit["history"]:
    lines.append(f"| {h['epoch']} | {_number(h['train_loss'])} | "
                 f"{_number(h['val_loss'])} | {h.get('learning_rate', '')} |")
  lines += ["", "## Search (best 10 by validation loss)", "",
            _top_rows(workdir / "search_results.csv", 10), ""]
  seeds = workdir / "search_seeds.csv"
  if seeds.exists():
    lines += ["## Spread over seeds (best 10 by mean validation loss)", "",
              _top_rows(seeds, 10), ""]
  lines += [f"Plots: `{PLOT_FILE}`, `{RESIDUALS_FILE}`, `{HEATMAP_FILE}`, "
            f"`{CURVES_FILE}`.", ""]
  return "\n".join(lines)


def _runner_up_lines(fit: dict | None) -> list[str]:
  if fit is None:
    return ["", "Runner-up: not fitted (--compare_runner_up, or the search "
            "had a single configuration)."]
  return ["", f"Runner-up (`runner_up` above): units={fit['units']}, "
          f"layers={fit['layers']}, dropout={fit['dropout']}, learning rate "
          f"{fit['learning_rate']}, seed {fit['seed']}; fitted like the "
          f"winner (best epoch {fit['best_epoch']}, val_loss "
          f"{fit['best_val_loss']:.5f})."]


def _top_rows(path: Path, count: int) -> str:
  rows = rundir.read_csv(path)[:count]
  header = list(rows[0]) if rows else []
  out = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
  out += ["| " + " | ".join(_short(v) for v in row.values()) + " |"
          for row in rows]
  return "\n".join(out)


def _number(value) -> str:
  return "stopped" if value is None else f"{value:.5g}"


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
  _save(fig, path)


def _save(fig, path: Path) -> None:
  """Written under a temporary name, then renamed: never half a PNG."""
  fig.tight_layout()
  tmp = path.with_name(f".{path.name}.tmp.png")
  try:
    fig.savefig(tmp, dpi=100)
    tmp.replace(path)
  except OSError as error:
    tmp.unlink(missing_ok=True)
    raise rundir.write_error(path, error) from None
  finally:
    plt.close(fig)


def _search_rows(workdir: Path) -> list[dict]:
  rows = []
  for path in sorted((workdir / "search").glob("cell_*.json")):
    rows += rundir.read_json(path)
  return rows


def _heatmap(path: Path, rows: list[dict]) -> None:
  """Best validation loss over units x layers, one panel per dropout."""
  dropouts = sorted({r["dropout"] for r in rows})
  units = sorted({r["units"] for r in rows})
  layers = sorted({r["layers"] for r in rows})
  fig, axes = plt.subplots(1, len(dropouts), squeeze=False,
                           figsize=(3.2 * len(dropouts) + 1, 3.2))
  for ax, dropout in zip(axes[0], dropouts, strict=True):
    grid = np.full((len(layers), len(units)), np.nan)
    for r in rows:
      if r["dropout"] == dropout and np.isfinite(r["val_loss"]):
        i, j = layers.index(r["layers"]), units.index(r["units"])
        grid[i, j] = np.fmin(grid[i, j], r["val_loss"])
    image = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(units)), [str(u) for u in units])
    ax.set_yticks(range(len(layers)), [str(n) for n in layers])
    ax.set_xlabel("units")
    ax.set_ylabel("layers")
    ax.set_title(f"dropout {dropout}")
    fig.colorbar(image, ax=ax, shrink=0.8)
  fig.suptitle("Search: validation loss (scaled)")
  _save(fig, path)


def _curves(path: Path, rows: list[dict], fit_history: list[dict]) -> None:
  """Validation loss per epoch of each cell's best variant; the fit's
  training and validation losses."""
  fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
  best: dict[tuple, dict] = {}
  for r in rows:
    key = (r["units"], r["layers"])
    if key not in best or r["val_loss"] < best[key]["val_loss"]:
      best[key] = r
  for (units, layers), r in sorted(best.items()):
    epochs = [h["epoch"] for h in r["history"] if h["val_loss"] is not None]
    losses = [h["val_loss"] for h in r["history"] if h["val_loss"] is not None]
    left.plot(epochs, losses, marker=".", lw=1, label=f"{units}x{layers}")
  left.set_title("Search: validation loss of each cell's best variant")
  left.set_xlabel("epoch")
  left.set_yscale("log")
  left.legend(fontsize="small", ncol=2)
  for key in ("train_loss", "val_loss"):
    epochs = [h["epoch"] for h in fit_history if h[key] is not None]
    right.plot(epochs, [h[key] for h in fit_history if h[key] is not None],
               marker=".", label=key.replace("_", " "))
  right.set_title("Final fit")
  right.set_xlabel("epoch")
  right.set_yscale("log")
  right.legend()
  _save(fig, path)


def _residuals(path: Path, result: dict, column: str) -> None:
  """Histogram of the one-step test errors, model against persistence."""
  fig, ax = plt.subplots(figsize=(7, 4))
  actual = result["actual"][:, 0]
  for name, label in (("model", "LSTM"), ("persistence", "persistence")):
    ax.hist(result["forecasts"][name][:, 0] - actual, bins=60, alpha=0.5,
            label=label)
  ax.set_xlabel(f"forecast - actual ({column}, original units)")
  ax.set_ylabel("windows")
  ax.set_title("Test split: one-step errors")
  ax.legend()
  _save(fig, path)


def _share(value: float | None) -> str:
  return "n/a" if value is None else f"{value:.3f}"
