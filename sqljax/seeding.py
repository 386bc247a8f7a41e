"""What seed ``i`` is: every key and env seed of a run derives from (base seed, i).

Seed ``i`` (an index, not a count) of base seed ``b`` gets the key
``fold_in(jax.random.key(b), i)`` (:func:`seed_keys`); its learner init, acting and
replay noise, evaluation noise and env seeds all derive from it, so seed ``i`` computes
the same run whatever other seeds run beside it.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

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
