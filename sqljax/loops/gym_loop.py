"""Gymnasium environments: the host steps one env per seed, the device does the rest.

Per env step the host makes one device call for all N seeds (vmapped and sharded over
the seed axis), ``carry, stats, actions = learn(carry, stats, packed)`` (carry and stats
donated; ``collect`` until ``learning_starts``): store each seed's transition, update,
sample the next actions (N, A), the only array copied back. ``packed`` (N, 2 O + 3)
float32 is ``[next_obs, reward, terminated, done, act_obs]`` per seed (``act_obs``: the
reset observation where the episode ended, else next_obs, so ``next_obs`` is always the
true last one). Evaluation: :func:`sqljax.loops.evaluation.evaluate`.

Training-episode statistics: an env whose class has ``training_columns``, a dict
``{column: (info key, how)}`` with ``how`` one of ``"max"``/``"min"`` (over every training
step of the log interval) or ``"end_mean"`` (the mean of the value at the last step of
each training episode that ended in the interval), gets those columns in its run's
metrics, one value per seed and log row (empty where nothing was seen). The exploration
tasks use them for the greatest distance swum each way and the least distance to the
maze's target (:mod:`sqljax.envs.exploration_tasks`).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from sqljax import learners, seeding
from sqljax.envs.gym_adapter import GymEnv, make_env
from sqljax.loops import device, evaluation
from sqljax.store.run_dir import RunSpec


@functools.lru_cache(maxsize=8)
def compiled(cfg, obs_dim: int, action_dim: int, capacity: int, mesh: Mesh):
    """The jitted, seed-vmapped, seed-sharded device functions (cached: runs with the same
    settings in one process compile once)."""
    sh = seeding.seed_sharding(mesh)
    o = obs_dim

    init_one = device.init_fn(cfg, obs_dim, action_dim, capacity)
    learner = learners.of_config(cfg)

    def finetune_one(key, pretrained):  # the same key split as init_one
        k_agent, k_loop = jax.random.split(key)
        return device.new_carry(learner.finetune(k_agent, pretrained, cfg), k_loop, capacity)

    def act(carry, obs):
        key, k_act = jax.random.split(carry.key)
        action, explore = device.policy_action(cfg, carry, obs, k_act)
        return carry.replace(key=key, obs=obs, action=action, explore=explore), action

    def start(carry, obs):  # a new episode (a run's start, or a resume)
        return act(carry.replace(episode_return=jnp.zeros_like(carry.episode_return),
                                 episode_length=jnp.zeros_like(carry.episode_length),
                                 explore=device.explore_init(carry.agent)), obs)

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
    )


TRACK_KINDS = ("max", "min", "end_mean")


class EpisodeTracker:
    """The ``training_columns`` of one seed's env, accumulated from each step's ``info``
    until :meth:`take` returns and clears them."""

    def __init__(self, columns: dict[str, tuple[str, str]]):
        for column, (key, how) in columns.items():
            if how not in TRACK_KINDS:
                raise ValueError(f"training column {column!r}: how must be one of {TRACK_KINDS}, "
                                 f"got {how!r}")
        self.columns = dict(columns)
        self._clear()

    def _clear(self) -> None:
        self.values: dict[str, list[float]] = {c: [] for c in self.columns}

    def add(self, info: dict[str, Any], done: bool) -> None:
        """One training step's ``info``; ``done``: the episode ended at this step."""
        for column, (key, how) in self.columns.items():
            if key not in info or (how == "end_mean" and not done):
                continue
            x, seen = float(info[key]), self.values[column]
            if how == "end_mean":
                seen.append(x)
            elif not seen:
                seen.append(x)
            elif (x > seen[0]) if how == "max" else (x < seen[0]):
                seen[0] = x

    def take(self) -> dict[str, float | None]:
        """The interval's values (None where nothing was seen); starts a new interval."""
        out = {c: (float(np.mean(v)) if v else None) for c, v in self.values.items()}
        self._clear()
        return out


class GymProgram:
    """The gymnasium side of :func:`sqljax.loops.multi_seed.train`: one env per local
    seed on the host, one device call per env step for all seeds."""

    kind = "gym"

    def __init__(self, spec: RunSpec, mesh: Mesh):
        self.spec, self.mesh, self.cfg = spec, mesh, spec.config
        self.sh = seeding.seed_sharding(mesh)
        self.local = seeding.local_seed_positions(self.sh, spec.n_seeds)
        self.envs = {p: make_env(spec.env_id, self.cfg.max_episode_steps) for p in self.local}
        env0 = self.envs[self.local[0]]
        self.obs_dim, self.action_dim = env0.obs_dim, env0.action_dim
        tracked = env0.training_columns
        self.extra_columns = list(tracked)
        self.trackers = {p: EpisodeTracker(tracked) for p in self.local} if tracked else {}
        self.capacity = int(min(self.cfg.replay_size, spec.steps))
        self.fns = compiled(self.cfg, self.obs_dim, self.action_dim, self.capacity, mesh)
        self.eval_envs: dict[int, list[GymEnv]] = {}
        self.actions = None

    def begin(self, carry, env_steps: int):
        """Reset every env (seeded by the env step) and sample the first actions."""
        spec = self.spec
        obs = np.zeros((spec.n_seeds, self.obs_dim), np.float32)
        for p in self.local:
            obs[p] = self.envs[p].reset(
                seed=seeding.reset_seed(spec.base_seed, spec.seed_ids[p], env_steps))
        carry, actions = self.fns["start"](carry, seeding.to_global(obs, self.sh))
        self.actions = seeding.local_rows(actions)
        return carry

    def advance(self, carry, stats, env_steps: int, target: int, stop):
        """Step every env from ``env_steps`` to ``target``, or until ``stop()``; returns
        (carry, stats, the env step reached)."""
        o, n = self.obs_dim, self.spec.n_seeds
        learn_from = max(self.cfg.learning_starts, 1)
        single = jax.process_count() == 1  # jit places host arrays itself, at less cost
        for t in range(env_steps + 1, target + 1):
            if stop():
                return carry, stats, t - 1
            packed = np.zeros((n, 2 * o + 3), np.float32)  # fresh: the device may alias it
            for p in self.local:
                next_obs, reward, terminated, truncated, info = self.envs[p].step(self.actions[p])
                done = terminated or truncated
                if self.trackers:
                    self.trackers[p].add(info, done)
                packed[p, :o] = next_obs
                packed[p, o:o + 3] = (reward, terminated, done)
                packed[p, o + 3:] = self.envs[p].reset() if done else next_obs
            step = self.fns["learn"] if t >= learn_from else self.fns["collect"]
            carry, stats, actions = step(carry, stats, packed if single else
                                         seeding.to_global(packed, self.sh))
            self.actions = seeding.local_rows(actions)  # the step's one device-to-host copy
        return carry, stats, target

    def train_columns(self, p: int) -> dict[str, float | None]:
        """Seed position ``p``'s training-episode columns since the last call."""
        return self.trackers[p].take() if self.trackers else {}

    def evaluate(self, agents, eval_keys: np.ndarray, eval_index: int) -> dict[str, np.ndarray]:
        spec, e = self.spec, self.spec.eval_episodes
        if not self.eval_envs:
            self.eval_envs = {p: [make_env(spec.env_id, self.cfg.max_episode_steps)
                                  for _ in range(2 * e)] for p in self.local}
        env_seeds = {p: 2 * seeding.eval_env_seeds(spec.base_seed, spec.seed_ids[p], eval_index, e)
                     for p in self.local}
        res = evaluation.evaluate(agents, self.mesh, self.eval_envs, env_seeds,
                                   seeding.fold_keys(eval_keys, eval_index),
                                   np.repeat([False, True], e))
        return {"stochastic": res["returns"][:, :e], "deterministic": res["returns"][:, e:]}

    def close(self) -> None:
        for env in list(self.envs.values()) + [x for es in self.eval_envs.values() for x in es]:
            env.close()
