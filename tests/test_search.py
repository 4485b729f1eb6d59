"""Checks on a finished grid: no-effect settings, edges, seed spreads."""

import pytest

from lstm_jax.config import make_config
from lstm_jax.search import (
    at_the_edge,
    no_effect,
    seed_spread,
    select,
    select_runner_up,
    widened,
)


def _row(units, layers, dropout, val, seed=0, rate=1e-3, train=0.5, epoch=3):
  return dict(units=units, layers=layers, dropout=dropout, learning_rate=rate,
              seed=seed, val_loss=val, train_loss=train, best_epoch=epoch,
              parameters=100)


def test_the_runner_up_differs_from_the_winner_in_more_than_its_seed():
  rows = [_row(32, 1, 0.1, 0.20, seed=0), _row(32, 1, 0.1, 0.21, seed=1),
          _row(64, 1, 0.1, float("nan")), _row(32, 1, 0.0, 0.22, seed=1),
          _row(64, 2, 0.0, 0.23)]
  rows.sort(key=lambda r: r["val_loss"] if r["val_loss"] == r["val_loss"]
            else float("inf"))
  winner = select(rows)
  assert (winner["dropout"], winner["seed"]) == (0.1, 0)
  runner_up = select_runner_up(rows, winner)
  assert (runner_up["units"], runner_up["dropout"], runner_up["seed"],
          runner_up["val_loss"]) == (32, 0.0, 1, 0.22)
  assert select_runner_up(rows[:2], winner) is None  # seeds alone
  assert select_runner_up(rows[:1], winner) is None


def test_identical_variants_are_flagged():
  rows = [_row(32, 1, 0.0, 0.25), _row(32, 1, 0.1, 0.25),
          _row(32, 1, 0.2, 0.26), _row(64, 1, 0.0, 0.3),
          _row(64, 1, 0.1, 0.31)]
  notes = no_effect(rows)
  assert notes == ["units=32 layers=1: dropout 0.0 and 0.1 gave identical "
                   "results; that setting had no effect there"]
  assert no_effect(rows[2:]) == []


def test_a_winner_at_the_edge_is_named_with_the_flag_to_try():
  config = make_config(units_range=(32, 96), units_step=32, layers=(1, 2))
  notes = at_the_edge({"units": 96, "layers": 2}, config)
  assert notes == ["best units = 96 is the largest tried; try --units_max=128",
                   "best layers = 2 is the deepest tried; try --layers=1,2,3"]
  assert at_the_edge({"units": 64, "layers": 1}, config) == []
  assert at_the_edge({"units": 32, "layers": 1}, config) == [
      "best units = 32 is the smallest tried; try --units_min=16 "
      "--units_step=16"]
  finer = make_config(units_range=(64, 128), units_step=32, layers=(1,))
  assert at_the_edge({"units": 64, "layers": 1}, finer) == [
      "best units = 64 is the smallest tried; try --units_min=32"]


def test_widening_goes_past_the_edge_and_stops_inside():
  config = make_config(units_range=(32, 96), units_step=32, layers=(1, 2))
  assert widened(config, {"units": 96, "layers": 1}).units == (32, 64, 96, 128)
  assert widened(config, {"units": 64, "layers": 2}).layers == (1, 2, 3)
  assert widened(config, {"units": 64, "layers": 1}) is None
  smaller = widened(config, {"units": 32, "layers": 1})
  assert smaller.units == (16, 32, 48, 64, 80, 96)  # the old widths stay


def test_spread_over_seeds():
  rows = [_row(32, 1, 0.0, v, seed=s) for s, v in enumerate((1.0, 2.0, 3.0))]
  rows += [_row(64, 1, 0.0, 0.5, seed=s) for s in range(3)]
  table = seed_spread(rows)
  assert [r["units"] for r in table] == [64, 32]  # best mean first
  assert table[1]["val_loss_mean"] == pytest.approx(2.0)
  assert table[1]["val_loss_std"] == pytest.approx(1.0)
  assert (table[1]["val_loss_min"], table[1]["val_loss_max"]) == (1.0, 3.0)
  assert table[0]["seeds"] == 3 and table[0]["val_loss_std"] == 0.0
