"""Where seeds live: stacked arrays carry a leading seed axis sharded over a one-axis
``Mesh`` named ``"seed"`` (:func:`seed_mesh`); each device holds N / D seeds and the
seeds never communicate (what seed ``i`` is: :mod:`sqljax.seeding`). Across hosts
(``jax.distributed.initialize()`` first) each process holds the seeds of its devices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from sqljax.loops.run_dir import RunError

SEED_AXIS = "seed"


def seed_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A one-axis mesh named ``"seed"`` over ``devices`` (default: all, ``jax.devices()``)."""
    devs = list(jax.devices() if devices is None else devices)
    if not devs:
        raise RunError("no devices to run on")
    return Mesh(np.asarray(devs, dtype=object), (SEED_AXIS,))


def seed_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (seed) axis split over the mesh, the rest of each array whole."""
    return NamedSharding(mesh, PartitionSpec(SEED_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def check_seed_count(n_seeds: int, n_devices: int) -> None:
    """RunError unless ``n_seeds`` >= 1 splits evenly over ``n_devices``."""
    if n_seeds < 1:
        raise RunError(f"the number of seeds must be >= 1, got {n_seeds}")
    if n_seeds % n_devices:
        lower = n_seeds - n_seeds % n_devices
        options = ", ".join(str(k) for k in (lower, lower + n_devices) if k >= 1)
        raise RunError(f"{n_seeds} seeds cannot be split evenly over {n_devices} devices; use a "
                       f"multiple of {n_devices} seeds (e.g. {options}), or fewer devices "
                       "(CUDA_VISIBLE_DEVICES, or --devices)")


def mesh_for(n_seeds: int, n_devices: int | None) -> Mesh:
    """The mesh of a run: the first ``n_devices`` devices (default all), checked."""
    devices = jax.devices()
    if n_devices is not None:
        if not 1 <= n_devices <= len(devices):
            raise RunError(f"--devices {n_devices}: there are {len(devices)} devices "
                           f"({devices[0].platform})")
        devices = devices[:n_devices]
    check_seed_count(n_seeds, len(devices))
    return seed_mesh(devices)


def local_seed_positions(sharding: NamedSharding, n_seeds: int) -> list[int]:
    """Positions (0..n-1) along the seed axis held by this process's devices."""
    rows: set[int] = set()
    for index in sharding.addressable_devices_indices_map((n_seeds,)).values():
        rows.update(range(*index[0].indices(n_seeds)))
    return sorted(rows)


def to_global(tree: Any, sharding: NamedSharding) -> Any:
    """Stacked arrays (host or device; leading seed axis) -> arrays sharded over seeds
    (or placed as ``sharding`` says, e.g. replicated).

    With several processes every process passes the full arrays (rows of seeds it does
    not hold may be anything) and contributes the rows its devices hold."""
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)

    def put(x):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx] if x.ndim else x)

    return jax.tree.map(put, tree)


def to_host(tree: Any) -> Any:
    """Sharded arrays -> full numpy arrays on every process (an all-gather across hosts)."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    return multihost_utils.process_allgather(tree, tiled=True)


def local_rows(x: jax.Array) -> np.ndarray:
    """This process's rows of a seed-sharded array, in a full-size host array (no
    communication; rows of other processes' seeds are zero)."""
    if jax.process_count() == 1:
        return np.asarray(x)
    out = np.zeros(x.shape, x.dtype)
    for shard in x.addressable_shards:
        out[shard.index] = np.asarray(shard.data)
    return out


def gather_rows(x: np.ndarray, local: list[int]) -> np.ndarray:
    """Rows computed by each process on the host (zero elsewhere), summed over processes."""
    if jax.process_count() == 1:
        return x
    mine = np.zeros_like(x)
    mine[local] = x[local]
    return np.sum(multihost_utils.process_allgather(mine), axis=0)


def unstack(tree: Any, i: int) -> Any:
    """Position ``i`` of every leaf of a stacked pytree (e.g. one seed's SQLState)."""
    return jax.tree.map(lambda x: x[i], tree)
