"""Gymnasium environments: the host steps one env per seed, the device does the rest.

Per env step the host makes exactly one device call for all N seeds (``jax.vmap`` over
the seed axis, sharded over the devices)::

    carry, stats, actions = learn(carry, stats, packed)    # carry, stats donated

which stores each seed's transition, runs ``updates_per_step`` updates once
``learning_starts`` transitions are stored (``collect`` before), and samples the next
actions. ``packed`` (N, 2 O + 3) float32 is ``[next_obs, reward, terminated, done,
act_obs]`` per seed (``act_obs``: next_obs, or the reset observation when the episode
ended, so ``next_obs`` is always the true last observation); the actions (N, A) are the
only array copied back. Evaluation (:func:`evaluate`) runs every episode of every seed
in lockstep on separate envs, with its own keys and env seeds.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

import sqljax
from sqljax import seeding
from sqljax.envs.gym_adapter import GymEnv, make_env
from sqljax.loops import device
from sqljax.loops.run_dir import RunSpec


@functools.lru_cache(maxsize=8)
def compiled(cfg: sqljax.SQLConfig, obs_dim: int, action_dim: int, capacity: int, mesh: Mesh):
    """The jitted, seed-vmapped, seed-sharded device functions (cached: runs with the same
    settings in one process compile once)."""
    sh = seeding.seed_sharding(mesh)
    o = obs_dim

    init_one = device.init_fn(cfg, obs_dim, action_dim, capacity)

    def finetune_one(key, pretrained):  # the same key split as init_one
        k_agent, k_loop = jax.random.split(key)
        return device.new_carry(sqljax.finetune_state(k_agent, pretrained, cfg), k_loop, capacity)

    def act(carry, obs):
        key, k_act = jax.random.split(carry.key)
        action = sqljax.sample_actions(carry.agent, obs, k_act)
        return carry.replace(key=key, obs=obs, action=action), action

    def start(carry, obs):  # a new episode (a run's start, or a resume)
        return act(carry.replace(episode_return=jnp.zeros_like(carry.episode_return),
                                 episode_length=jnp.zeros_like(carry.episode_length)), obs)

    def step(learning: bool):
        def one(carry, stats, packed):
            next_obs, reward, terminated, done = packed[:o], packed[o], packed[o + 1], packed[o + 2]
            carry, stats = device.store_and_learn(cfg, carry, stats, carry.action, next_obs, reward,
                                                  terminated, done > 0, learning)
            carry, action = act(carry, packed[o + 3:])
            return carry, stats, action

        return jax.jit(jax.vmap(one), in_shardings=(sh, sh, sh), out_shardings=(sh, sh, sh),
                       donate_argnums=(0, 1))

    return dict(
        init=jax.jit(jax.vmap(init_one), in_shardings=sh, out_shardings=sh),
        finetune=jax.jit(jax.vmap(finetune_one), in_shardings=(sh, sh), out_shardings=sh),
        start=jax.jit(jax.vmap(start), in_shardings=(sh, sh), out_shardings=(sh, sh),
                      donate_argnums=0),
        collect=step(False),
        learn=step(True),
        act_eval=act_eval_fn(mesh),
    )


@functools.lru_cache(maxsize=8)
def act_eval_fn(mesh: Mesh):
    """Jitted ``(agents, obs (N, M, O), deterministic (M,), keys (N, 2), t) -> actions
    (N, M, A)``: evaluation's one device call per step."""
    sh, rep = seeding.seed_sharding(mesh), seeding.replicated(mesh)
    return jax.jit(jax.vmap(device.act_eval, in_axes=(0, 0, None, 0, None)),
                   in_shardings=(sh, sh, rep, sh, rep), out_shardings=sh)


def evaluate(agents: sqljax.SQLState, mesh: Mesh, envs: dict[int, list[GymEnv]],
             env_seeds: dict[int, Sequence[int]], keys: np.ndarray, deterministic: np.ndarray,
             record: bool = False) -> dict[str, Any]:
    """M episodes per seed, all in lockstep (one device call per step for every seed and
    episode), the one evaluation routine of gymnasium envs.

    agents: stacked learners (N, ...), sharded over ``mesh``. envs: per local seed
    position, M envs (reused across evaluations). env_seeds: per local position, the
    reset seed of each of the M episodes. keys (N, 2): each seed's acting key.
    deterministic (M,) bool: episode j acts with xi = 0. record: render the first
    episode of the first local seed (its env made with ``render_mode="rgb_array"``).
    Returns ``returns`` and ``lengths`` (N, M) (zero for other processes' seeds) and
    ``frames``.
    """
    sh, rep = seeding.seed_sharding(mesh), seeding.replicated(mesh)
    act = act_eval_fn(mesh)
    local = sorted(envs)
    n, m = int(np.shape(keys)[0]), len(deterministic)
    obs = np.zeros((n, m, agents.obs_dim), np.float32)
    alive = np.zeros((n, m), bool)
    returns, lengths = np.zeros((n, m)), np.zeros((n, m), np.int64)
    for p in local:
        for j, env in enumerate(envs[p]):
            obs[p, j] = env.reset(seed=int(env_seeds[p][j]))
            alive[p, j] = True
    frames = [envs[local[0]][0].render()] if record else []
    keys_g = seeding.to_global(np.asarray(keys), sh)
    mask_g = seeding.to_global(np.asarray(deterministic, bool), rep)
    multi = jax.process_count() > 1
    limit = max((e.time_limit or 0) for p in local for e in envs[p]) or int(agents.config.max_episode_steps)
    t = 0
    # Several processes must make the same calls: they run to the time limit together.
    while (alive.any() and not multi) or (multi and t < limit):
        actions = seeding.local_rows(act(agents, seeding.to_global(obs, sh), mask_g, keys_g,
                                       seeding.to_global(np.int32(t), rep)))
        t += 1
        for p in local:
            for j in np.flatnonzero(alive[p]):
                o, r, term, trunc, _ = envs[p][j].step(actions[p, j])
                obs[p, j] = o
                returns[p, j] += r
                lengths[p, j] += 1
                alive[p, j] = not (term or trunc)
                if record and p == local[0] and j == 0:
                    frames.append(envs[p][0].render())
    return {"returns": seeding.gather_rows(returns, local),
            "lengths": seeding.gather_rows(lengths, local), "frames": frames}


class GymProgram:
    """The gymnasium side of :func:`sqljax.loops.multi_seed.train`: one env per local
    seed on the host, one device call per env step for all seeds."""

    kind = "gym"
    extra_columns: list[str] = []

    def __init__(self, spec: RunSpec, mesh: Mesh):
        self.spec, self.mesh, self.cfg = spec, mesh, spec.config
        self.sh = seeding.seed_sharding(mesh)
        self.local = seeding.local_seed_positions(self.sh, spec.n_seeds)
        self.envs = {p: make_env(spec.env_id, self.cfg.max_episode_steps) for p in self.local}
        env0 = self.envs[self.local[0]]
        self.obs_dim, self.action_dim = env0.obs_dim, env0.action_dim
        self.capacity = int(min(self.cfg.replay_size, spec.steps))
        self.fns = compiled(self.cfg, self.obs_dim, self.action_dim, self.capacity, mesh)
        self.eval_envs: dict[int, list[GymEnv]] = {}
        self.actions = None

    def begin(self, carry, env_steps: int):
        """Reset every env (seeded by the env step) and sample the first actions."""
        spec = self.spec
        obs = np.zeros((spec.n_seeds, self.obs_dim), np.float32)
        for p in self.local:
            obs[p] = self.envs[p].reset(seed=seeding.reset_seed(spec.base_seed, spec.seed_ids[p],
                                                              env_steps))
        carry, actions = self.fns["start"](carry, seeding.to_global(obs, self.sh))
        self.actions = seeding.local_rows(actions)
        return carry

    def advance(self, carry, stats, env_steps: int, target: int):
        """Step every env from ``env_steps`` to ``target``; returns (carry, stats)."""
        o, n = self.obs_dim, self.spec.n_seeds
        learn_from = max(self.cfg.learning_starts, 1)
        single = jax.process_count() == 1  # jit places host arrays itself, at less cost
        for t in range(env_steps + 1, target + 1):
            packed = np.zeros((n, 2 * o + 3), np.float32)  # fresh: the device may alias it
            for p in self.local:
                next_obs, reward, terminated, truncated, _ = self.envs[p].step(self.actions[p])
                done = terminated or truncated
                packed[p, :o] = next_obs
                packed[p, o:o + 3] = (reward, terminated, done)
                packed[p, o + 3:] = self.envs[p].reset() if done else next_obs
            step = self.fns["learn"] if t >= learn_from else self.fns["collect"]
            carry, stats, actions = step(carry, stats, packed if single else
                                         seeding.to_global(packed, self.sh))
            self.actions = seeding.local_rows(actions)  # the step's one device-to-host copy
        return carry, stats

    def evaluate(self, agents, eval_keys: np.ndarray, eval_index: int) -> dict[str, np.ndarray]:
        spec, e = self.spec, self.spec.eval_episodes
        if not self.eval_envs:
            self.eval_envs = {p: [make_env(spec.env_id, self.cfg.max_episode_steps)
                                  for _ in range(2 * e)] for p in self.local}
        env_seeds = {p: 2 * seeding.eval_env_seeds(spec.base_seed, spec.seed_ids[p], eval_index, e)
                     for p in self.local}
        res = evaluate(agents, self.mesh, self.eval_envs, env_seeds,
                       seeding.fold_keys(eval_keys, eval_index), np.repeat([False, True], e))
        return {"stochastic": res["returns"][:, :e], "deterministic": res["returns"][:, e:]}

    def close(self) -> None:
        for env in list(self.envs.values()) + [x for es in self.eval_envs.values() for x in es]:
            env.close()
