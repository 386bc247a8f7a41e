"""NumPy references shared by the learners' tests: a hand-made batch and a float64 MLP
that reads flax parameters, so each learner's targets and losses can be recomputed by hand."""

from __future__ import annotations

import jax
import numpy as np

from sqljax.learners.protocol import Batch


def make_batch(batch: int, obs_dim: int, action_dim: int, terminated, seed: int = 0) -> Batch:
    """A batch of ``batch`` random transitions (float32) with the given ``terminated`` (B,)."""
    rng = np.random.default_rng(seed)
    return Batch(obs=rng.normal(size=(batch, obs_dim)).astype(np.float32),
                 action=rng.uniform(-1, 1, size=(batch, action_dim)).astype(np.float32),
                 reward=rng.normal(size=(batch,)).astype(np.float32),
                 next_obs=rng.normal(size=(batch, obs_dim)).astype(np.float32),
                 terminated=np.asarray(terminated, np.float32))


def np_tree(tree):
    """Every leaf as a float64 NumPy array."""
    return jax.tree.map(lambda x: np.asarray(x, np.float64), tree)


def np_mlp(layers, x):
    """ReLU MLP over a list of (kernel, bias), the last layer linear."""
    for i, (w, b) in enumerate(layers):
        x = x @ w + b
        if i < len(layers) - 1:
            x = np.maximum(x, 0.0)
    return x
