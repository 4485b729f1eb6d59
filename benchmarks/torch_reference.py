"""The PyTorch reference: the same forecaster as lstm_jax's, trained the way
researchers do today, one configuration after another.

Only the benchmarks import this module (torch is the `bench` extra).
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn


class TorchForecaster(nn.Module):
  """nn.LSTM, dropout between layers and on the last hidden state, a head."""

  def __init__(self, features: int, units: int, layers: int, dropout: float):
    super().__init__()
    self.lstm = nn.LSTM(features, units, layers, batch_first=True,
                        dropout=dropout if layers > 1 else 0.0)
    self.drop = nn.Dropout(dropout)
    self.head = nn.Linear(units, 1)

  def forward(self, x):
    hs, _ = self.lstm(x)
    return self.head(self.drop(hs[:, -1]))[:, 0]


def use_all_threads() -> int:
  torch.set_num_threads(os.cpu_count() or 1)
  return torch.get_num_threads()


def windows(series: torch.Tensor, starts: np.ndarray, length: int):
  """x [B, length, features] and the next value of feature 0, y [B]."""
  index = torch.from_numpy(starts[:, None] + np.arange(length))
  return series[index], series[torch.from_numpy(starts + length), 0]


def train_epoch(model, optimizer, series, starts, length, batch_size, rng):
  """One shuffled epoch; returns the mean training loss."""
  model.train()
  order = rng.permutation(starts)
  total = 0.0
  for first in range(0, len(order), batch_size):
    x, y = windows(series, order[first:first + batch_size], length)
    optimizer.zero_grad()
    loss = torch.mean((model(x) - y) ** 2)
    loss.backward()
    optimizer.step()
    total += loss.item() * len(x)
  return total / len(order)


@torch.no_grad()
def eval_loss(model, series, starts, length, batch_size=1024) -> float:
  model.eval()
  total = 0.0
  for first in range(0, len(starts), batch_size):
    x, y = windows(series, starts[first:first + batch_size], length)
    total += torch.sum((model(x) - y) ** 2).item()
  return total / len(starts)
