"""A training run compiled end to end, for environments written in JAX.

The environment is an argument (no default): any object of the protocol of
:mod:`sqljax.envs.jax_env` (gymnax 1.0's interface, automatic reset, the true last
observation in ``info["final_observation"]``). Sampler actions in [-1, 1]^A are mapped
affinely onto the action box. The replay stores the final observation, so truncations
bootstrap and terminations don't; ``cfg.max_episode_steps`` adds a time limit of its
own (the loop then resets the env). One chunk of training is a ``lax.scan`` over env
steps, each doing :func:`sqljax.loops.device.store_and_learn`; one call per chunk::

    fns = make_train(cfg, env, env_params, capacity=10_000, chunk_steps=1_000)
    carry, stats = jax.jit(fns.init_carry)(key), device.new_stats()
    carry, stats = jax.jit(fns.run_chunk, donate_argnums=(0, 1))(carry, stats)

Both are pure, so ``jax.vmap`` over a leading seed axis trains independent seeds in one
program; :class:`JaxProgram` is that, for :func:`sqljax.loops.multi_seed.train`.

An env may add measures of its own to each evaluation, with two optional methods:
``env.eval_columns(env_params) -> list[str]``, extra columns of the run's metrics, and
``env.eval_metrics(rollout_out, env_params) -> (columns, record)``, computed in the
compiled evaluation from one seed's stochastic episodes
(:func:`sqljax.loops.evaluation.rollout`'s output): ``columns`` maps those column names
to () arrays, ``record`` (possibly empty) maps names to () arrays kept, per seed, in
the run's record of each evaluation.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from sqljax import learners, seeding
from sqljax.envs.jax_env import action_affine, space_dims
from sqljax.loops import device
from sqljax.loops.evaluation import rollout
from sqljax.store import RunError
from sqljax.store.run_dir import RunSpec


class TrainFns(NamedTuple):
    """init_carry(key) -> Carry; run_chunk(carry, stats) -> (carry, stats): ``chunk_steps``
    env steps (stats: :class:`sqljax.loops.device.Stats`)."""

    init_carry: Callable
    run_chunk: Callable
    chunk_steps: int


def make_train(cfg: Any, env: Any, env_params: Any, capacity: int,
               chunk_steps: int = 1_000) -> TrainFns:
    """The pure functions of a training run on a JAX-native env (replay of ``capacity``)
    for the learner whose config ``cfg`` is."""
    learner = learners.of_config(cfg)
    if int(chunk_steps) < 1 or int(capacity) < 1:
        raise ValueError(f"capacity and chunk_steps must be >= 1, got {capacity}, {chunk_steps}")
    obs_dim, action_dim = space_dims(env, env_params)
    offset, scale = action_affine(env, env_params)

    def init_carry(key: jax.Array) -> device.Carry:
        k_agent, k_env, k_run = jax.random.split(key, 3)
        obs, env_state = env.reset(k_env, env_params)
        agent = learner.init(k_agent, cfg, obs_dim, action_dim)
        return device.new_carry(agent, k_run, int(capacity), jnp.asarray(obs, jnp.float32), env_state)

    def env_step(c, _):
        carry, stats = c
        key, k_act, k_env, k_reset = jax.random.split(carry.key, 4)
        action, explore = device.policy_action(cfg, carry, carry.obs, k_act)
        obs, env_state, reward, terminated, truncated, info = env.step(
            k_env, carry.env_state, offset + scale * action, env_params)
        ended = terminated | truncated
        cut = ~ended & (carry.episode_length + 1 >= cfg.max_episode_steps)
        learning = carry.env_steps + 1 >= max(cfg.learning_starts, 1)
        carry, stats = device.store_and_learn(
            cfg, carry.replace(key=key, explore=explore), stats, action, info["final_observation"],
            jnp.asarray(reward, jnp.float32), terminated, ended | cut, learning)
        reset_obs, reset_state = env.reset(k_reset, env_params)
        env_state = jax.tree.map(lambda r, s: jnp.where(cut, r, s), reset_state, env_state)
        return (carry.replace(obs=jnp.where(cut, reset_obs, obs).astype(jnp.float32),
                              env_state=env_state), stats), None

    def run_chunk(carry, stats):
        (carry, stats), _ = jax.lax.scan(env_step, (carry, stats), None, length=int(chunk_steps))
        return carry, stats

    return TrainFns(init_carry=init_carry, run_chunk=run_chunk, chunk_steps=int(chunk_steps))


def chunk_steps(spec: RunSpec) -> int:
    """Env steps per compiled call: the gcd of every schedule that is on and the run length."""
    return math.gcd(spec.steps, *spec.periods)


@functools.lru_cache(maxsize=8)
def compiled(cfg, env, env_params, capacity: int, chunk: int, eval_episodes: int, mesh: Mesh):
    sh = seeding.seed_sharding(mesh)
    fns = make_train(cfg, env, env_params, capacity, chunk)
    env_metrics = getattr(env, "eval_metrics", None)

    def finetune_one(key, pretrained):
        carry = fns.init_carry(key)
        k_agent = jax.random.split(key, 3)[0]
        return carry.replace(agent=device.strong(learners.of_config(cfg).finetune(k_agent, pretrained, cfg)))

    def eval_one(agent, key):
        k_s, k_d = jax.random.split(key)
        s = rollout(agent, k_s, eval_episodes, env, env_params)
        d = rollout(agent, k_d, eval_episodes, env, env_params, deterministic=True)
        out = {"stochastic": s["episode_return"], "deterministic": d["episode_return"]}
        if env_metrics is not None:  # the env's own measures of the stochastic episodes
            out["columns"], out["record"] = env_metrics(s, env_params)
        return out

    return dict(
        init=jax.jit(jax.vmap(fns.init_carry), in_shardings=sh, out_shardings=sh),
        finetune=jax.jit(jax.vmap(finetune_one), in_shardings=(sh, sh), out_shardings=sh),
        run_chunk=jax.jit(jax.vmap(fns.run_chunk), in_shardings=(sh, sh), out_shardings=(sh, sh),
                          donate_argnums=(0, 1)),
        evaluate=jax.jit(jax.vmap(eval_one), in_shardings=(sh, sh), out_shardings=sh),
    )


class JaxProgram:
    """The JAX-native side of :func:`sqljax.loops.multi_seed.train`: one compiled call per
    chunk of env steps for all seeds."""

    kind = "jax"

    def __init__(self, spec: RunSpec, mesh: Mesh, env: Any, env_params: Any):
        self.spec, self.mesh, self.cfg = spec, mesh, spec.config
        self.env, self.env_params, self.jax_env = env, env_params, (env, env_params)
        self.sh = seeding.seed_sharding(mesh)
        self.obs_dim, self.action_dim = space_dims(env, env_params)
        self.capacity = int(min(self.cfg.replay_size, spec.steps))
        self.chunk = chunk_steps(spec)
        self.fns = compiled(self.cfg, env, env_params, self.capacity, self.chunk,
                             spec.eval_episodes, mesh)
        columns = getattr(env, "eval_columns", None)
        self.extra_columns = list(columns(env_params)) if columns is not None else []

    def begin(self, carry, env_steps: int):
        if env_steps % self.chunk:
            raise RunError(f"cannot resume at env step {env_steps} with chunks of {self.chunk} "
                           "steps; keep --log-every, --eval-every and --checkpoint-every as before")
        return carry

    def advance(self, carry, stats, env_steps: int, target: int, stop):
        while env_steps < target and not stop():
            carry, stats = self.fns["run_chunk"](carry, stats)
            env_steps += self.chunk
        return carry, stats, env_steps

    def train_columns(self, p: int) -> dict[str, Any]:
        """Training-episode columns: none on JAX-native envs."""
        return {}

    def evaluate(self, agents, eval_keys: np.ndarray, eval_index: int) -> dict[str, Any]:
        keys = seeding.to_global(seeding.fold_keys(eval_keys, eval_index), self.sh)
        res = seeding.to_host(self.fns["evaluate"](agents, keys))
        return jax.tree.map(np.asarray, res)

    def close(self) -> None:
        pass
