"""The multi-goal experiment (paper Fig. 1): train Soft Q-Learning on the 2-D multi-goal
task (the training driver, one seed, the compiled loop), then draw the figure and count
the goals reached.

    python -m experiments.studies.multigoal --steps 20000 --seed 0 --out runs/multigoal/seed0

``--out`` (default ``runs/multigoal/seed{S}``) is a run directory as every command writes
it (run.json, config.json, seed{S}/metrics.csv with the goals reached by
--track-episodes evaluation episodes after every chunk, checkpoints/step_*/: the trained
learner, ``sqljax.load_checkpoint(path)``), plus:
  figure.png     left: stochastic evaluation paths from the origin over the goal-distance
                 cost; right: Q(s, .) on a 50 x 50 action grid with 100 sampler samples,
                 at three states
  summary.json   share of evaluation episodes ending at each goal and at none, the
                 deterministic policy's goal, when every goal was first reached, and
                 the training history (the metrics rows)
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import sqljax
from experiments import cli
from sqljax.envs import multigoal as mg
from sqljax.loops import multi_seed
from sqljax.loops.evaluation import rollout
from sqljax.store import run_dir as rd

#: Training length (env steps). Every goal is reached by >= 10% of the evaluation episodes
#: after about 3k steps; by 20k the returns have levelled off (about -200 per episode)
#: and seeds 0-2 still spread over all four goals (the least visited at 13-19%).
DEFAULT_STEPS = 20_000
#: States at which the figure draws Q(s, .) and the sampler's actions.
QUERY_STATES = ((-2.5, 0.0), (0.0, 0.0), (2.5, 2.5))


def multigoal_config(**overrides) -> sqljax.SQLConfig:
    """The paper's multi-goal settings (the ``"multigoal"`` preset)."""
    return sqljax.SQLConfig.preset("multigoal", **overrides)


def from_origin(key):
    """Start exactly at the origin (the figure's and the goal count's start state)."""
    del key
    return jnp.zeros((mg.OBS_DIM,), jnp.float32), mg.init_state(jnp.zeros((mg.OBS_DIM,)))


_rollout = jax.jit(rollout, static_argnames=("n_episodes", "env", "env_params",
                                             "deterministic", "reset_fn", "max_steps"))


def evaluate(agent, key, n_episodes: int, deterministic: bool = False,
             params: mg.MultiGoalParams = mg.DEFAULT_PARAMS):
    """Episodes from the origin. Returns (paths (N, T+1, 2) masked after the end as the last
    position, lengths (N,), goal index reached per episode (N,), -1 for none)."""
    out = _rollout(agent, key, n_episodes=n_episodes, env=mg.MultiGoal(), env_params=params,
                   deterministic=deterministic, reset_fn=from_origin,
                   max_steps=params.max_episode_steps)
    goals = jnp.max(jnp.where(out["alive"], out["info"]["goal"], -1), axis=1)
    return np.asarray(out["obs"]), np.asarray(out["length"]), np.asarray(goals)


def goal_shares(goals: np.ndarray, n_goals: int = len(mg.GOALS)) -> dict[str, float]:
    """Share of episodes per goal index and reaching none."""
    shares = {f"goal_{i}": float(np.mean(goals == i)) for i in range(n_goals)}
    shares["none"] = float(np.mean(goals < 0))
    return shares


def first_all_goals(history, min_share: float = 0.10):
    """When the tracked evaluations first reached every goal: ``"any"`` (each goal by at
    least one episode) and ``"each_<min_share>"`` (each goal by at least that share of
    the episodes), as env steps and wall seconds since the start (compilation
    included), or None if never."""
    tracked = [h for h in history if h.get("eval_goal_none") is not None]
    shares = [[h[f"eval_goal_{i}"] for i in range(len(mg.GOALS))] for h in tracked]
    out = {}
    for name, reached in (("any", lambda s: min(s) > 0.0),
                          (f"each_{min_share:g}", lambda s: min(s) >= min_share)):
        hit = next((h for h, s in zip(tracked, shares) if reached(s)), None)
        out[name] = None if hit is None else {"env_steps": hit["step"], "wall_time": hit["wall_time"]}
    return out


def q_grid(agent, states, n: int = 50):
    """Q(s, a) on an n x n grid over [-1, 1]^2 for each state: (S, n, n), and the grid axis."""
    axis = jnp.linspace(-1.0, 1.0, n)
    ax, ay = jnp.meshgrid(axis, axis, indexing="xy")
    actions = jnp.stack([ax.ravel(), ay.ravel()], axis=-1)  # (n*n, 2)
    obs = jnp.asarray(states, jnp.float32)  # (S, 2)
    acts = jnp.broadcast_to(actions, (obs.shape[0],) + actions.shape)  # (S, n*n, 2)
    q = sqljax.q_values(agent, obs, acts)  # (S, n*n)
    return np.asarray(q).reshape(obs.shape[0], n, n), np.asarray(axis)


def plot_figure(agent, paths, lengths, key, path: str | os.PathLike,
                params: mg.MultiGoalParams = mg.DEFAULT_PARAMS, n_samples: int = 100):
    """Draw the paper's Figure 1 to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(10.5, 7.0))
    grid = fig.add_gridspec(3, 2, width_ratios=(3.0, 1.0), wspace=0.05, hspace=0.35)

    # Left: evaluation paths over the goal-distance cost.
    ax = fig.add_subplot(grid[:, 0])
    b = params.position_bound
    xs = np.linspace(-b, b, 200)
    X, Y = np.meshgrid(xs, xs)
    cost = mg.distance_cost(np, params, np.stack([X, Y], axis=-1).astype(np.float32))
    cs = ax.contour(X, Y, cost, levels=15, cmap="viridis", linewidths=0.8)
    ax.clabel(cs, inline=True, fontsize=7, fmt="%.0f")
    for p, n in zip(paths, lengths):
        ax.plot(p[: n + 1, 0], p[: n + 1, 1], color="b", linewidth=0.6, alpha=0.6)
    goals = np.asarray(params.goals)
    ax.plot(goals[:, 0], goals[:, 1], "ro", markersize=9, label="goals")
    for g in goals:
        ax.add_patch(plt.Circle(g, params.goal_radius, color="r", fill=False, linestyle="--"))
    qs = np.asarray(QUERY_STATES)
    ax.plot(qs[:, 0], qs[:, 1], "k^", markersize=7, label="states of the Q plots")
    ax.set_xlim(-b, b)
    ax.set_ylim(-b, b)
    ax.set_aspect("equal")
    ax.set_title(f"{len(paths)} stochastic evaluation paths from the origin")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend(loc="lower left", fontsize=8)

    # Right: Q(s, .) contours with the sampler's actions.
    q, axis = q_grid(agent, QUERY_STATES)
    obs = jnp.repeat(jnp.asarray(QUERY_STATES, jnp.float32)[:, None, :], n_samples, axis=1)
    samples = np.asarray(sqljax.sample_actions(agent, obs, key))  # (S, n_samples, 2)
    for i, s in enumerate(QUERY_STATES):
        ax = fig.add_subplot(grid[i, 1])
        ax.contour(axis, axis, q[i], levels=20, cmap="viridis", linewidths=0.8)
        ax.plot(samples[i, :, 0], samples[i, :, 1], "r.", markersize=3)
        ax.set_xlim(-1, 1)
        ax.set_ylim(-1, 1)
        ax.set_aspect("equal")
        ax.set_title(f"Q(s, a) and {n_samples} actions, s = ({s[0]:g}, {s[1]:g})", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.yaxis.tick_right()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def parse_args(argv=None):
    p = cli.Parser(prog="python -m experiments.studies.multigoal", description=__doc__,
                   formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="environment steps of training")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="output folder (default runs/multigoal/seed{S})")
    p.add_argument("--chunk-steps", type=int, default=1000, help="env steps per compiled chunk")
    p.add_argument("--eval-episodes", type=int, default=200, help="stochastic evaluation episodes (>= 100)")
    p.add_argument("--track-episodes", type=int, default=100,
                   help="stochastic episodes evaluated after every chunk to track the goals "
                        "reached during training (0: off)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    for name, least in (("steps", 1), ("chunk_steps", 1), ("eval_episodes", 100), ("track_episodes", 0)):
        if getattr(args, name) < least:
            p.error(f"{cli.flag(name)} must be at least {least}, got {getattr(args, name)}")
    if args.out is None:
        args.out = Path("runs/multigoal") / f"seed{args.seed}"
    return args


def _history(run_dir: Path, seed: int) -> list[dict]:
    """The run's metrics rows with numbers as numbers (None where not logged)."""
    def num(v):
        return None if v in ("", None) else float(v)

    return [{k: num(v) for k, v in row.items()} for row in rd.read_metrics(run_dir, seed)]


def main(argv=None):
    try:
        args = parse_args(argv)
        cfg = multigoal_config()
        spec = rd.RunSpec(env_id="sqljax/MultiGoal-v0", config=cfg, seed_ids=(args.seed,),
                          steps=args.steps, out=args.out, eval_every=args.chunk_steps,
                          eval_episodes=max(args.track_episodes, 1), log_every=args.chunk_steps,
                          checkpoint_every=args.steps, keep_checkpoints=1,
                          progress=not args.no_progress)
        if args.track_episodes == 0:
            spec.eval_every = 0
        start = time.perf_counter()
        result = multi_seed.train(spec, log=lambda _: None)
    except (*cli.HANDLED_ERRORS,) as e:
        raise SystemExit(cli.report_error(e, "interrupted")) from None
    train_time = time.perf_counter() - start
    agent = jax.tree.map(lambda x: x[0], result["agents"])
    key = jax.random.fold_in(jax.random.key(args.seed), 0xF16)
    k_eval, k_fig = jax.random.split(key)

    paths, lengths, goals = evaluate(agent, k_eval, args.eval_episodes)
    _, _, det_goal = evaluate(agent, k_eval, 1, deterministic=True)
    plot_figure(agent, paths, lengths, k_fig, args.out / "figure.png")

    history = _history(args.out, args.seed)
    shares = goal_shares(goals)
    summary = {
        "seed": args.seed,
        "env_steps": result["env_steps"],
        "train_seconds": train_time,
        "env_steps_per_second": result["env_steps"] / train_time,
        "eval_episodes": int(args.eval_episodes),
        "goals": [list(g) for g in mg.GOALS],
        "goal_shares": shares,
        "distinct_goals_reached": int(len(set(goals[goals >= 0].tolist()))),
        "deterministic_goal": int(det_goal[0]),
        "first_all_goals": first_all_goals(history),
        "config": cfg.to_dict(),
        "history": history,
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: summary[k] for k in ("goal_shares", "distinct_goals_reached",
                                               "deterministic_goal", "first_all_goals",
                                               "train_seconds", "env_steps_per_second")},
                     indent=2))
    return summary


if __name__ == "__main__":
    main()
