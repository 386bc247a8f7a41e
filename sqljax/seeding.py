"""Seeds: what seed ``i`` is, and where its arrays live.

Seed ``i`` (an index, not a count) of base seed ``b`` gets the key
``fold_in(jax.random.key(b), i)`` (:func:`seed_keys`); its learner init, acting and
replay noise, evaluation noise and env seeds all derive from it, so seed ``i`` computes
the same run whatever other seeds run beside it. Stacked arrays carry a leading seed
axis sharded over a one-axis ``Mesh`` named ``"seed"`` (:func:`seed_mesh`); each device
holds N / D seeds and the seeds never communicate. Across hosts
(``jax.distributed.initialize()`` first) each process holds the seeds of its devices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

SEED_AXIS = "seed"
EVAL_TAG = 0xE7A1
RESET_TAG = 0x5EED


def seed_keys(base_seed: int, seed_ids: Sequence[int]) -> np.ndarray:
    """Raw uint32 keys (len(seed_ids), 2): row j is ``fold_in(key(base_seed), seed_ids[j])``.

    Seed i's key depends only on (base_seed, i), never on how many seeds run with it.
    """
    base = jax.random.key(int(base_seed))
    ids = jnp.asarray(list(seed_ids), jnp.uint32)
    keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(ids)
    return np.asarray(jax.random.key_data(keys))


def fold_keys(keys: np.ndarray, data: int) -> np.ndarray:
    """Raw keys (N, 2) -> raw keys (N, 2), each folded with ``data``."""
    return np.asarray(jax.vmap(lambda k: jax.random.fold_in(k, data))(jnp.asarray(keys)))


def reset_seed(base_seed: int, seed_id: int, env_steps: int) -> int:
    """The env seed of seed ``seed_id``'s first reset after env step ``env_steps``."""
    return int(np.random.SeedSequence([base_seed, seed_id, RESET_TAG, env_steps]).generate_state(1)[0])


def eval_env_seeds(base_seed: int, seed_id: int, eval_index: int, n: int) -> list[int]:
    """Env seeds of the ``n`` episodes of seed ``seed_id``'s evaluation ``eval_index``."""
    return [int(s) for s in np.random.SeedSequence(
        [base_seed, seed_id, EVAL_TAG, eval_index]).generate_state(n)]


def seed_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A one-axis mesh named ``"seed"`` over ``devices`` (default: all, ``jax.devices()``)."""
    devs = list(jax.devices() if devices is None else devices)
    if not devs:
        raise ValueError("no devices to run on")
    return Mesh(np.asarray(devs, dtype=object), (SEED_AXIS,))


def seed_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (seed) axis split over the mesh, the rest of each array whole."""
    return NamedSharding(mesh, PartitionSpec(SEED_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


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
