"""Evaluation episodes of any learner (through the protocol's ``act``), on either kind
of environment: :func:`rollout` on a JAX-native env (pure, compiled end to end) and
:func:`evaluate` on gymnasium envs (the host steps them, one device call per step for
every seed and episode). Each episode starts from the learner's initial exploration
state (``explore_init``); ``deterministic`` episodes act in the learner's evaluation mode
(its greedy action), the others as it explores.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from sqljax import learners, seeding
from sqljax.envs.jax_env import action_affine


def initial_explore(agent: Any, shape: tuple[int, ...]) -> Any:
    """The learner's initial exploration state with leading axes ``shape`` (numpy)."""
    learner = learners.of_state(agent)
    one = learner.explore_init(agent.config, agent.action_dim)
    return jax.tree.map(lambda x: np.broadcast_to(np.asarray(x), tuple(shape) + np.shape(x)).copy(), one)


def rollout(agent: Any, key: jax.Array, n_episodes: int, env: Any, env_params: Any,
            *, deterministic: bool = False, reset_fn: Callable | None = None,
            max_steps: int | None = None) -> dict[str, Any]:
    """``n_episodes`` evaluation episodes of a learner, in parallel (pure; jittable with
    ``agent`` and ``key`` as arguments and the rest static).

    Stochastic: the learner's exploring actions (SQL: a fresh xi per state and step);
    ``deterministic=True``: its evaluation mode (SQL: xi = 0).
    ``reset_fn(key) -> (obs, env_state)`` chooses the start (default ``env.reset``).
    Episodes run for ``max_steps`` (default ``agent.config.max_episode_steps``) steps or
    until the environment ends them; steps after the end are masked out.

    Returns: ``obs`` (N, T+1, O) (after the end: the last one repeated), ``reward`` (N, T)
    (0 after the end), ``alive`` (N, T) bool, ``terminated`` (N,) bool,
    ``episode_return`` (N,), ``length`` (N,) int32, ``info`` (each leaf (N, T, ...)).
    """
    learner = learners.of_state(agent)
    reset_fn = (lambda k: env.reset(k, env_params)) if reset_fn is None else reset_fn
    max_steps = int(agent.config.max_episode_steps if max_steps is None else max_steps)
    offset, scale = action_affine(env, env_params)
    explore0 = learner.explore_init(agent.config, agent.action_dim)

    def episode(key):
        k_reset, k_run = jax.random.split(key)
        obs, state = reset_fn(k_reset)

        def one_step(c, k):
            obs, state, explore, alive = c
            k_act, k_env = jax.random.split(k)
            action, explore = learner.act(agent, explore, obs, k_act, deterministic)
            next_obs, next_state, reward, term, trunc, info = env.step(
                k_env, state, offset + scale * action, env_params)
            shown = jnp.where(alive, info["final_observation"], obs)
            out = dict(obs=shown, reward=jnp.where(alive, reward, 0.0), alive=alive,
                       terminated=alive & term, info=info)
            return (jnp.where(alive, next_obs, obs), next_state, explore,
                    alive & ~(term | trunc)), out

        _, out = jax.lax.scan(one_step, (obs, state, explore0, jnp.array(True)),
                              jax.random.split(k_run, max_steps))
        return dict(obs=jnp.concatenate([obs[None], out["obs"]], axis=0), reward=out["reward"],
                    alive=out["alive"], terminated=jnp.any(out["terminated"]),
                    episode_return=jnp.sum(out["reward"]),
                    length=jnp.sum(out["alive"]).astype(jnp.int32), info=out["info"])

    return jax.vmap(episode)(jax.random.split(key, n_episodes))


def act_eval(agent: Any, explore: Any, obs: jax.Array, deterministic: jax.Array,
             key: jax.Array, t: jax.Array) -> tuple[jax.Array, Any]:
    """(agent, explore (M, ...), obs (M, O), deterministic (M,) bool, key, t) ->
    (actions (M, A), explore): row i acts in the evaluation mode where
    ``deterministic[i]``, else explores with randomness from ``fold_in(key, t)``."""
    learner = learners.of_state(agent)
    k = jax.random.fold_in(key, t)
    explored, explore_s = learner.act(agent, explore, obs, k, False)
    frozen, explore_d = learner.act(agent, explore, obs, k, True)

    def pick(d, s):
        return jnp.where(deterministic.reshape(deterministic.shape + (1,) * (d.ndim - 1)), d, s)

    return pick(frozen, explored), jax.tree.map(pick, explore_d, explore_s)


@functools.lru_cache(maxsize=8)
def act_eval_fn(mesh: Mesh):
    """Jitted ``(agents, explore (N, M, ...), obs (N, M, O), deterministic (M,), keys (N, 2),
    t) -> (actions (N, M, A), explore)``: evaluation's one device call per step."""
    sh, rep = seeding.seed_sharding(mesh), seeding.replicated(mesh)
    return jax.jit(jax.vmap(act_eval, in_axes=(0, 0, 0, None, 0, None)),
                   in_shardings=(sh, sh, sh, rep, sh, rep), out_shardings=(sh, sh),
                   donate_argnums=1)


def evaluate(agents: Any, mesh: Mesh, envs: dict[int, list[Any]],
             env_seeds: dict[int, Sequence[int]], keys: np.ndarray, deterministic: np.ndarray,
             record: bool = False, trace: Callable[[dict[str, Any]], Sequence[float]] | None = None
             ) -> dict[str, Any]:
    """M episodes per seed on gymnasium envs, all in lockstep (one device call per step
    for every seed and episode), the one evaluation routine of gymnasium envs.

    agents: stacked learners (N, ...), sharded over ``mesh``. envs: per local seed
    position, M :class:`sqljax.envs.gym_adapter.GymEnv` (reused across evaluations).
    env_seeds: per local position, the reset seed of each of the M episodes. keys (N, 2):
    each seed's acting key. deterministic (M,) bool: episode j acts in the evaluation
    mode. record: render the first episode of the first local seed (its env made with
    ``render_mode="rgb_array"``). trace: ``info -> values`` recorded at every step of every
    episode (e.g. a position). Returns ``returns`` and ``lengths`` (N, M) (zero for other
    processes' seeds), ``frames``, and with ``trace`` ``traces``: per local position, per
    episode, an array (T, K) of the traced values.
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
    traces: dict[int, list[list[Sequence[float]]]] = {p: [[] for _ in envs[p]] for p in local}
    keys_g = seeding.to_global(np.asarray(keys), sh)
    mask_g = seeding.to_global(np.asarray(deterministic, bool), rep)
    explore = seeding.to_global(initial_explore(agents, (n, m)), sh)
    multi = jax.process_count() > 1
    limit = max((e.time_limit or 0) for p in local for e in envs[p]) or int(agents.config.max_episode_steps)
    t = 0
    # Several processes must make the same calls: they run to the time limit together.
    while (alive.any() and not multi) or (multi and t < limit):
        actions, explore = act(agents, explore, seeding.to_global(obs, sh), mask_g, keys_g,
                               seeding.to_global(np.int32(t), rep))
        actions = seeding.local_rows(actions)
        t += 1
        for p in local:
            for j in np.flatnonzero(alive[p]):
                o, r, term, trunc, info = envs[p][j].step(actions[p, j])
                if trace is not None:
                    traces[p][j].append(trace(info))
                obs[p, j] = o
                returns[p, j] += r
                lengths[p, j] += 1
                alive[p, j] = not (term or trunc)
                if record and p == local[0] and j == 0:
                    frames.append(envs[p][0].render())
    return {"returns": seeding.gather_rows(returns, local),
            "lengths": seeding.gather_rows(lengths, local), "frames": frames,
            **({"traces": {p: [np.asarray(t, float) for t in traces[p]] for p in local}}
               if trace is not None else {})}
