"""Runs `experiments.grid` and kills itself with SIGKILL at a chosen point.

  python tests/kill_runner.py POINT N -- GRID FLAGS...

POINT is where the N-th event ends the process, as a pre-empted job would:
  segment      the N-th training segment of the search ends
  cell_file    the N-th search cell's result file has just been written
  fit_segment  the N-th training segment of the final fit ends
  fit_commit   the N-th fit checkpoint is written but not yet committed
"""

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from absl import app  # noqa: E402
from orbax.checkpoint._src.path import atomicity  # noqa: E402

from experiments import grid  # noqa: E402
from lstm_jax import job, rundir, train  # noqa: E402

POINT, N = sys.argv[1], int(sys.argv[2])
events = {"count": 0, "in_fit": False}


def event(point: str) -> None:
  if point == POINT:
    events["count"] += 1
    if events["count"] == N:
      os.kill(os.getpid(), signal.SIGKILL)


observe = train.SegmentSizer.observe


def observed(self, steps, seconds):
  observe(self, steps, seconds)
  event("fit_segment" if events["in_fit"] else "segment")


write_json = rundir.write_json


def wrote_json(path, value):
  write_json(path, value)
  if path.name.startswith("cell_"):
    event("cell_file")


run_fit = job.run_fit


def fitting(*args, **kwargs):
  events["in_fit"] = True
  return run_fit(*args, **kwargs)


finalize = atomicity.AtomicRenameTemporaryPath.finalize


async def finalizing(self):
  if events["in_fit"]:
    event("fit_commit")
  return await finalize(self)


train.SegmentSizer.observe = observed
rundir.write_json = wrote_json
job.run_fit = fitting
atomicity.AtomicRenameTemporaryPath.finalize = finalizing

if __name__ == "__main__":
  sys.argv = ["grid", *sys.argv[sys.argv.index("--") + 1:]]
  app.run(grid.main)
