"""The final fit's progress: one updating line in a terminal (tqdm), plain
log lines every `every` seconds otherwise (batch logs, files)."""

from __future__ import annotations

import sys
import time

from absl import logging
from tqdm import tqdm


class FitProgress:
  """Called with dicts (epoch, epochs, step, steps, batch_size, loss) by
  the fit."""

  def __init__(self, every: float = 30.0, stream=None):
    self.stream = stream or sys.stderr
    self.every, self.bar, self.epoch = every, None, None
    self.started = self.last_log = time.monotonic()
    self.first_step, self.name = None, None

  def __call__(self, p: dict) -> None:
    now = time.monotonic()
    name = p.get("name", "fit")
    if name != self.name:  # another fit (the runner-up's): a line of its own
      self.close()
      self.bar, self.first_step, self.name = None, None, name
    if self.first_step is None:  # a resumed fit starts mid-way
      self.first_step = ((p["epoch"] - 1) * p["steps"] + p["step"], now)
    done = (p["epoch"] - 1) * p["steps"] + p["step"]
    total = p["epochs"] * p["steps"]
    steps0, time0 = self.first_step
    rate = (done - steps0) / (now - time0) if now > time0 else 0.0
    if self.stream.isatty():
      self._bar(p, done, total)
      return
    if now - self.last_log >= self.every or done == total:
      eta = (total - done) / rate if rate else float("nan")
      logging.info("%s epoch %d/%d step %d/%d: loss %.5f, %.0f windows/s, "
                   "ETA %s (if all epochs run)", name, p["epoch"], p["epochs"],
                   p["step"], p["steps"], p["loss"], rate * p["batch_size"],
                   _clock(eta))
      self.last_log = now

  def _bar(self, p: dict, done: int, total: int) -> None:
    if self.bar is None:
      self.bar = tqdm(total=total, initial=done, unit="step", file=self.stream,
                      dynamic_ncols=True, smoothing=0.1)
    self.bar.set_description(f"{self.name} epoch {p['epoch']}/{p['epochs']}",
                             refresh=False)
    self.bar.set_postfix(loss=f"{p['loss']:.5f}", windows_per_s=round(
        (self.bar.format_dict["rate"] or 0) * p["batch_size"]), refresh=False)
    self.bar.update(done - self.bar.n)

  def close(self) -> None:
    if self.bar is not None:
      self.bar.close()


def _clock(seconds: float) -> str:
  if seconds != seconds:  # nan
    return "?"
  minutes, secs = divmod(int(seconds), 60)
  hours, minutes = divmod(minutes, 60)
  return f"{hours}:{minutes:02d}:{secs:02d}"
