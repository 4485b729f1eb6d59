"""Beyond one device: meshes, where a training loop's arrays go, and shares
of the grid for Slurm job arrays and for several processes.

One process with several devices trains a search cell with its variant
axis split over them when the variant count divides evenly, else with each
step's batch split (data parallel); the final fit always splits the batch.
Several processes (`jax.distributed`, one per node or GPU) split the final
fit's batch over every device of every process, each process streaming its
own columns of each batch; they share the search's cells as job-array tasks
do. Results do not depend on the device count beyond the order of sums.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import numpy as np
from absl import logging
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = "devices"
SPLITS = ("none", "variants", "batch")


class Shard(NamedTuple):
  """This task's share of the grid: the cells whose index is `index` modulo
  `count`."""

  index: int = 0
  count: int = 1


def shard_from_env(num_shards: int | None, shard_index: int | None,
                   environ: Mapping[str, str] = os.environ) -> Shard:
  """The share given by flags, else by a Slurm job array (its task count,
  and this task's id counted from the array's first), else the whole grid.
  Raises ValueError on a share that cannot be."""
  count = num_shards if num_shards is not None else int(
      environ.get("SLURM_ARRAY_TASK_COUNT", 1))
  if shard_index is not None:
    index = shard_index
  elif "SLURM_ARRAY_TASK_ID" in environ:
    index = (int(environ["SLURM_ARRAY_TASK_ID"])
             - int(environ.get("SLURM_ARRAY_TASK_MIN", 0)))
  else:
    index = 0
  if count < 1:
    raise ValueError(f"--num_shards={count} must be at least 1")
  if not 0 <= index < count:
    raise ValueError(f"--shard_index={index} must lie in [0, {count}) for "
                     f"--num_shards={count}")
  return Shard(index, count)


def cells_of(cells: list, shard: Shard) -> list:
  return [cell for i, cell in enumerate(cells) if i % shard.count ==
          shard.index]


def spans_processes(mesh: Mesh | None) -> bool:
  return mesh is not None and any(
      d.process_index != jax.process_index() for d in mesh.devices.flat)


@dataclasses.dataclass(frozen=True)
class Placement:
  """How a training loop's arrays lie over a mesh of devices: `split` says
  which axis is cut, the variants' (their leading K axis) or each step's
  batch of windows; "none" keeps everything on the default device."""

  mesh: Mesh | None = None
  split: str = "none"

  @classmethod
  def choose(cls, variants: int, batch: int, devices=None,
             allow_variants: bool = True) -> Placement:
    """Variants when they divide evenly over the devices, else the batch
    when it does, else one device."""
    devices = list(jax.local_devices() if devices is None else devices)
    count = len(devices)
    if count == 1:
      return cls()
    mesh = Mesh(np.array(devices), (AXIS,))
    if allow_variants and variants % count == 0:
      return cls(mesh, "variants")
    if batch % count == 0:
      return cls(mesh, "batch")
    logging.warning(
        "%d devices: the batch of %d%s does not divide over them, so one "
        "device does all the work; make --batch_size a multiple of %d to "
        "use them all", count, batch,
        f" (nor the {variants} variants)" if allow_variants else "", count)
    return cls(mesh, "none") if spans_processes(mesh) else cls()

  @property
  def devices(self) -> int:
    return 1 if self.mesh is None else self.mesh.size

  def _sharding(self, spec: P):
    return None if self.mesh is None else NamedSharding(self.mesh, spec)

  def replicated(self):
    return self._sharding(P())

  def per_variant(self, axis: int = 0):
    """Arrays with the variant axis at `axis` ([K, ...] or [steps, K])."""
    if self.split != "variants":
      return self.replicated()
    return self._sharding(P(*([None] * axis), AXIS))

  def columns(self):
    """A chunk's batches of window starts and weights [batches, batch]."""
    return self._sharding(P(None, AXIS) if self.split == "batch" else P())

  def batch(self):
    """One step's windows, [batch, ...]."""
    return self._sharding(P(AXIS) if self.split == "batch" else P())

  def put(self, tree: Any, sharding) -> Any:
    """`tree` on the mesh as `sharding` says (the same values in every
    process); on the default device when `sharding` is None."""
    if not spans_processes(self.mesh):
      return jax.tree.map(lambda leaf: jax.device_put(leaf, sharding), tree)
    return jax.tree.map(lambda leaf: _global(leaf, sharding), tree)

  def put_columns(self, array: np.ndarray) -> jax.Array:
    """A [batches, columns] array of this process's columns (all of them
    in one process) as the global array split by `columns()`."""
    sharding = self.columns()
    if sharding is None:
      return jax.device_put(array)
    if spans_processes(self.mesh) and self.split == "batch":
      return jax.make_array_from_process_local_data(sharding, array)
    return jax.device_put(array, sharding)


def _global(leaf, sharding) -> jax.Array:
  """A leaf with the same value in every process as a global array (JAX
  places only host data, or arrays already global, across processes)."""
  if isinstance(leaf, jax.Array) and leaf.sharding == sharding:
    return leaf
  if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(
      leaf.dtype, jax.dtypes.prng_key):
    return jax.random.wrap_key_data(
        _global(jax.random.key_data(leaf), sharding),
        impl=jax.random.key_impl(leaf))
  return jax.make_array_from_process_local_data(sharding, np.asarray(leaf))


def initialize(coordinator: str | None = None, processes: int | None = None,
               process_id: int | None = None) -> None:
  """Starts JAX's multi-process runtime: from the arguments when given,
  else from the environment (Slurm's, for one task per node or GPU)."""
  if coordinator:
    jax.distributed.initialize(coordinator, processes, process_id)
  else:
    jax.distributed.initialize()


def several_processes() -> bool:
  """Whether this process is one of a multi-process job (asked without
  starting JAX's backends, which a run that ends on bad input never needs)."""
  return jax.distributed.is_initialized() and jax.process_count() > 1


def is_primary() -> bool:
  """Whether this process writes what every process would write alike."""
  return not several_processes() or jax.process_index() == 0


def barrier(name: str) -> None:
  """Waits until every process gets here (no-op in one process)."""
  if several_processes():
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)


def any_process(*flags: bool) -> tuple[bool, ...]:
  """Each flag, true where it is true in any process, the same answer in
  all: decisions taken from a process's own clock or signals (save now,
  stop now) must be taken by all together, or a collective waits forever."""
  if not several_processes():
    return tuple(bool(f) for f in flags)
  from jax.experimental import multihost_utils
  gathered = np.asarray(multihost_utils.process_allgather(
      np.asarray(flags, np.int32)))
  return tuple(bool(f) for f in gathered.reshape(-1, len(flags)).any(axis=0))


def from_primary(value: int) -> int:
  """Process 0's `value` in every process (e.g. a size it measured)."""
  if not several_processes():
    return value
  from jax.experimental import multihost_utils
  return int(multihost_utils.broadcast_one_to_all(np.int32(value)))
