"""Does a learner locomote, and in which directions? Stochastic episodes of each learner
on ``AntAnyDirection`` (open arena, paid for speed in any direction), against a freshly
initialised learner of the same config.

    python -m experiments.studies.locomotion zoo/AntAnyDirection/pretrain/seed0 \
        zoo/AntAnyDirection/pretrain/seed1 --episodes 20 --out results/transfer

Per learner: the torso's mean planar speed (m/s, over every step of every episode), the
net distance from the start at the end of each episode, the episode lengths, and the
heading of each episode's net displacement. The spread of headings is summarised by the
mean resultant length R of the unit heading vectors (1: every episode goes the same
way; near 0: headings spread around the circle) and by how many of 8 45-degree sectors
hold at least one episode. Writes ``locomotion.json`` and ``locomotion.png`` (paths seen
from above, and a polar histogram of headings) under ``--out``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import jax  # noqa: E402
import numpy as np  # noqa: E402

import sqljax  # noqa: E402
from experiments import cli  # noqa: E402

ENV_ID = "sqljax/AntAnyDirection-v0"
SECTORS = 8


def rollouts(agent: sqljax.SQLState, episodes: int, seed: int, max_steps: int,
             deterministic: bool = False) -> dict:
    """``episodes`` episodes in lockstep, one batched action call per step (fresh xi, or
    xi = 0 with ``deterministic``): per episode the torso's xy path (T_i, 2), its per-step
    planar speed, and its length."""
    import gymnasium as gym

    import sqljax.envs.gym_adapter  # noqa: F401  (registers the Ant tasks)

    envs = [gym.make(ENV_ID, max_episode_steps=max_steps) for _ in range(episodes)]
    obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)])
    paths = [[np.zeros(2)] for _ in envs]
    for i, env in enumerate(envs):
        paths[i][0] = np.asarray(env.unwrapped.data.qpos[:2], float).copy()
    speeds: list[list[float]] = [[] for _ in envs]
    alive = np.ones(episodes, bool)
    act = jax.jit(sqljax.sample_actions, static_argnames="deterministic")
    key = jax.random.key(seed)
    while alive.any():
        key, sub = jax.random.split(key)
        actions = np.asarray(act(agent, obs.astype(np.float32), sub, deterministic=deterministic))
        for i, env in enumerate(envs):
            if not alive[i]:
                continue
            obs[i], _, terminated, truncated, info = env.step(actions[i])
            paths[i].append(np.array([info["x_position"], info["y_position"]], float))
            speeds[i].append(float(info["xy_speed"]))
            alive[i] = not (terminated or truncated)
    for env in envs:
        env.close()
    return {"paths": [np.asarray(p) for p in paths], "speeds": speeds,
            "lengths": [len(s) for s in speeds]}


def summarize(run: dict) -> dict:
    """Mean planar speed, net distances, headings and their spread."""
    disp = np.asarray([p[-1] - p[0] for p in run["paths"]])
    headings = np.arctan2(disp[:, 1], disp[:, 0])
    unit = np.stack([np.cos(headings), np.sin(headings)], axis=1)
    sectors = np.floor((headings + np.pi) / (2 * np.pi / SECTORS)).astype(int) % SECTORS
    all_speeds = np.concatenate([np.asarray(s) for s in run["speeds"]])
    return {
        "mean_planar_speed": float(all_speeds.mean()),
        "net_distance_mean": float(np.linalg.norm(disp, axis=1).mean()),
        "net_distance": [float(d) for d in np.linalg.norm(disp, axis=1)],
        "episode_length_mean": float(np.mean(run["lengths"])),
        "headings_deg": [float(np.degrees(h)) for h in headings],
        "heading_resultant_length": float(np.linalg.norm(unit.mean(axis=0))),
        "sectors_visited": int(len(set(sectors.tolist()))),
    }


def plot(results: dict[str, tuple[dict, dict]], out: Path, mode: str = "stochastic") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(11, 4.8))
    ax = fig.add_subplot(1, 2, 1)
    polar = fig.add_subplot(1, 2, 2, projection="polar")
    bins = np.linspace(-np.pi, np.pi, 2 * SECTORS + 1)
    width = bins[1] - bins[0]
    for k, (name, (run, summary)) in enumerate(results.items()):
        color = f"C{k}"
        for j, path in enumerate(run["paths"]):
            ax.plot(path[:, 0], path[:, 1], color=color, lw=0.8, alpha=0.7,
                    label=f"{name}: {summary['mean_planar_speed']:.2f} m/s" if j == 0 else None)
        counts, _ = np.histogram(np.radians(summary["headings_deg"]), bins)
        polar.bar(bins[:-1] + width / 2, counts, width=width * 0.9 / len(results),
                  color=color, alpha=0.6, label=name)
    ax.plot([0], [0], "k+", ms=10)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(f"torso paths of {mode} episodes (mean planar speed)", fontsize=9)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    polar.set_title("heading of each episode's net displacement", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = cli.Parser(prog="python -m experiments.studies.locomotion", description=__doc__.split("\n\n")[0])
    p.add_argument("learners", nargs="+", help="learner exports or checkpoints (e.g. zoo/.../seed0)")
    p.add_argument("--episodes", type=int, default=20, help="stochastic episodes per learner")
    p.add_argument("--max-steps", type=int, default=1000, help="episode length limit")
    p.add_argument("--seed", type=int, default=0, help="seed of the episodes' starts and noise")
    p.add_argument("--deterministic", action="store_true", help="xi = 0 instead of fresh noise "
                   "(outputs get a _deterministic suffix)")
    p.add_argument("--out", default="results/transfer", help="output directory")
    try:
        args = p.parse_args(argv)
        cli.check_at_least(args, {"episodes": 1, "max_steps": 1})
        names = ["/".join(Path(path).parts[-2:]) for path in args.learners]  # e.g. pretrain/seed0
        if len(set(names)) < len(names):
            raise cli.RunError("two learners would share a label: " + ", ".join(args.learners))
        agents = {name: sqljax.load_checkpoint(path) for name, path in zip(names, args.learners)}
    except cli.HANDLED_ERRORS as e:
        return cli.report_error(e, "interrupted")
    first = next(iter(agents.values()))
    agents = {f"pretrained {k}": v for k, v in agents.items()}
    agents["fresh (untrained)"] = sqljax.init(jax.random.key(args.seed), first.config,
                                              first.obs_dim, first.action_dim)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name, agent in agents.items():
        run = rollouts(agent, args.episodes, args.seed, args.max_steps, args.deterministic)
        results[name] = (run, summarize(run))
        s = results[name][1]
        print(f"{name:>22}: planar speed {s['mean_planar_speed']:.2f} m/s, net distance "
              f"{s['net_distance_mean']:.1f} m, length {s['episode_length_mean']:.0f}, heading "
              f"R {s['heading_resultant_length']:.2f}, sectors {s['sectors_visited']}/{SECTORS}")
    summary = {"env_id": ENV_ID, "episodes": args.episodes, "seed": args.seed,
               "mode": "deterministic" if args.deterministic else "stochastic",
               "learners": {name: {"source": src, **results[name][1]} for name, src in
                            zip(results, [*args.learners, "sqljax.init"])}}
    stem = "locomotion_deterministic" if args.deterministic else "locomotion"
    (out / f"{stem}.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {plot(results, out / f'{stem}.png', summary['mode'])} and {out / f'{stem}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
