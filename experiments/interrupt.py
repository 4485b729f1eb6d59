"""Ctrl-C for the command-line programs: stop soon, saved, and say how to go on.

The first Ctrl-C asks training to stop at its next segment end (about a
second away), where it saves a checkpoint and raises train.Interrupted.
Outside a training loop nobody is there to ask, so after `grace` seconds
the request turns into a plain KeyboardInterrupt; so does a second Ctrl-C.
Every result file is written atomically, so stopping anywhere loses at most
the work since the last checkpoint.
"""

from __future__ import annotations

import shlex
import signal
import sys


class Interruption:
  """A context in which Ctrl-C is a request; call it to read the request."""

  def __init__(self, grace: float = 5.0):
    self.grace, self.requested = grace, False

  def __call__(self) -> bool:
    return self.requested

  def __enter__(self) -> Interruption:
    self._previous = signal.signal(signal.SIGINT, self._request)
    return self

  def __exit__(self, *exc) -> None:
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGINT, self._previous)

  def _request(self, signum, frame) -> None:
    if self.requested:
      raise KeyboardInterrupt
    self.requested = True
    signal.signal(signal.SIGALRM, self._expire)
    signal.setitimer(signal.ITIMER_REAL, self.grace)

  def _expire(self, signum, frame) -> None:
    raise KeyboardInterrupt


def resume_command() -> str:
  """The command line this process was started with, to run again."""
  module = sys.modules["__main__"].__spec__
  program = (f"python -m {module.name}" if module else
             f"python {shlex.quote(sys.argv[0])}")
  return " ".join([program, *map(shlex.quote, sys.argv[1:])])
