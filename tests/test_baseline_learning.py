"""Learning, not just running: DDPG (code, paper), TD3 (DDPG's modern) and SAC swing Pendulum up.

gymnax's Pendulum-v1 through the compiled loop (one seed, 200-step episodes, 1000
warm-up steps for every preset). A random policy scores about -1200 to -1600; a
swing-up about -150. Measured (seed 0, deterministic evaluation over 10 episodes every
2500 steps): TD3 -154 at 7.5k steps, DDPG code -145 at 12.5k, DDPG paper -142 at 12.5k,
SAC (its `sql` preset: SQL's network and batch) -138 at 5k (-1380, -138, -177, -109, -156,
-159 at 2.5k ... 15k).
Each takes 20-60 s on a 2-core CPU: slow tests (`make test-slow`), like SQL's Pendulum test.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from sqljax import learners
from sqljax.envs import make_jax_env
from sqljax.loops import device
from sqljax.loops.evaluation import rollout
from sqljax.loops.scan_loop import make_train

CHUNK = 2500


def deterministic_returns(learner_name: str, preset: str, steps: int) -> list[float]:
    """The mean deterministic return of 10 episodes after every CHUNK env steps."""
    env, params = make_jax_env("gymnax:Pendulum-v1")
    learner = learners.get(learner_name)
    cfg = learner.make_config(preset, learning_starts=1000, max_episode_steps=200)
    fns = make_train(cfg, env, params, capacity=steps, chunk_steps=CHUNK)
    run = jax.jit(fns.run_chunk, donate_argnums=(0, 1))
    evaluate = jax.jit(lambda agent, key: rollout(agent, key, 10, env, params,
                                                  deterministic=True)["episode_return"])
    carry = jax.jit(fns.init_carry)(jax.random.key(0))
    stats = jax.jit(lambda: device.new_stats(learner.metrics))()
    returns = []
    for i in range(steps // CHUNK):
        carry, stats = run(carry, stats)
        returns.append(float(np.mean(evaluate(carry.agent, jax.random.key(100 + i)))))
    return returns


pytestmark = pytest.mark.slow


@pytest.mark.parametrize("learner, preset, steps", [
    ("ddpg", "modern", 10_000), ("ddpg", "code", 17_500), ("ddpg", "paper", 17_500), ("sac", "sql", 15_000)])
def test_pendulum_swings_up(learner, preset, steps):
    returns = deterministic_returns(learner, preset, steps)
    assert returns[0] < -700, returns  # it starts far from a swing-up...
    assert max(returns) >= -300, returns  # ...and learns one
    assert returns[-1] >= -500, returns  # and keeps it
