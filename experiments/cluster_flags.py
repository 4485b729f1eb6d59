"""Flags that split the work: the search over job-array tasks, the final
fit over the processes of one job (several nodes or GPUs)."""

from __future__ import annotations

import jax
from absl import flags, logging

from lstm_jax import distributed
from lstm_jax.config import ConfigError

flags.DEFINE_integer("num_shards", None, "Split the search's cells over this "
                     "many tasks (cell i goes to task i mod n); default "
                     "SLURM_ARRAY_TASK_COUNT in a Slurm job array, else 1.")
flags.DEFINE_integer("shard_index", None, "This task's share, from 0; "
                     "default SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN.")
flags.DEFINE_bool("distributed", False, "Start JAX's multi-process runtime "
                  "(one process per node or GPU, e.g. under srun, whose "
                  "environment it reads) and fit with all their devices.")
flags.DEFINE_string("coordinator_address", None, "With --distributed "
                    "outside Slurm: host:port of process 0.")
flags.DEFINE_integer("num_processes", None, "With --coordinator_address: "
                     "how many processes take part.")
flags.DEFINE_integer("process_id", None, "With --coordinator_address: this "
                     "process's number, from 0.")
FLAGS = flags.FLAGS


def start(phase: str) -> distributed.Shard:
  """Joins the other processes when asked, and returns this task's share
  of the search."""
  if FLAGS.distributed:
    address, count, index = (FLAGS.coordinator_address, FLAGS.num_processes,
                             FLAGS.process_id)
    if address and not (":" in address and count and index is not None
                        and 0 <= index < count):
      raise ConfigError(
          f"--coordinator_address={address} needs the form HOST:PORT, with "
          "--num_processes (at least 1) and --process_id in [0, "
          "--num_processes)")
    try:
      distributed.initialize(address, count, index)
    except (ValueError, IndexError, RuntimeError) as error:
      raise ConfigError(
          f"--distributed: JAX's multi-process runtime did not start "
          f"({str(error).splitlines()[0]}); run under Slurm (srun) or give "
          "--coordinator_address=HOST:PORT, --num_processes and "
          "--process_id") from None
    if jax.process_index() > 0:  # one log for the job: the first process's
      logging.set_verbosity(logging.WARNING)
  try:
    shard = distributed.shard_from_env(FLAGS.num_shards, FLAGS.shard_index)
  except ValueError as error:
    raise ConfigError(str(error)) from None
  if shard.count > 1 and phase not in ("search", "collect"):
    raise ConfigError(
        f"--num_shards={shard.count} splits the search over tasks (a job "
        f"array): give --phase=search (the last task to finish collects the "
        f"table), then run --phase=fit; not --phase={phase}")
  return shard
