"""The fit's progress display: a bar in a terminal, log lines otherwise."""

import io
import logging

from experiments.progress import FitProgress


def _ticks():
  return [dict(epoch=1, epochs=3, step=s, steps=10, batch_size=64, loss=0.5)
          for s in (2, 4, 10)]


def test_a_terminal_gets_one_updating_bar():
  class Terminal(io.StringIO):
    def isatty(self):
      return True

  out = Terminal()
  progress = FitProgress(stream=out)
  for tick in _ticks():
    progress(tick)
  progress.close()
  text = out.getvalue()
  assert "fit epoch 1/3" in text and "loss=0.50000" in text
  assert "10/30" in text  # steps of all epochs


def test_elsewhere_plain_log_lines(caplog):
  progress = FitProgress(every=0.0, stream=io.StringIO())
  with caplog.at_level(logging.INFO, logger="absl"):
    for tick in _ticks():
      progress(tick)
  lines = [r.getMessage() for r in caplog.records]
  assert lines and all("fit epoch 1/3 step" in line for line in lines)
  assert "loss 0.50000" in lines[-1] and "windows/s" in lines[-1]
  assert "ETA" in lines[-1]


def test_the_runner_ups_fit_gets_a_line_of_its_own(caplog):
  progress = FitProgress(every=0.0, stream=io.StringIO())
  with caplog.at_level(logging.INFO, logger="absl"):
    for tick in _ticks() + [dict(t, name="fit (runner-up)") for t in _ticks()]:
      progress(tick)
  lines = [r.getMessage() for r in caplog.records]
  assert lines[-1].startswith("fit (runner-up) epoch 1/3 step 10/10")
  rate = float(lines[-1].split(" windows/s")[0].rsplit(" ", 1)[1])
  assert rate > 0  # its own, not measured from the first fit's steps
