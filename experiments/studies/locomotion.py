"""Does a learner (SQL, DDPG, SAC) locomote, and in which directions? Stochastic episodes
of each learner on ``AntAnyDirection`` (open arena, paid for speed in any direction),
against a freshly initialised learner of the same config.

    python -m experiments.studies.locomotion zoo/AntAnyDirection/pretrain/seed0 \
        zoo/AntAnyDirection/pretrain/seed1 --episodes 20 --out results/transfer

Per learner: the torso's mean planar speed (m/s, over every step of every episode), the
net distance from the start at the end of each episode, the episode lengths, and the
heading of each episode's net displacement. The spread of headings is summarised by the
mean resultant length R of the unit heading vectors (1: every episode goes the same
way; near 0: headings spread around the circle) and by how many of 8 45-degree sectors
hold at least one episode. Writes ``locomotion.json`` and ``locomotion.png`` (paths seen
from above, and a polar histogram of headings) under ``--out``.

Direction spread (``direction_spread.json``, ``direction_spread.png``, with a
``_deterministic`` suffix under ``--deterministic``): per learner, over the episodes whose
net displacement is at least ``--min-distance`` (the others are counted as stationary and
left out of every heading measure),

* ``R``: mean resultant length of the unit heading vectors, in [0, 1];
* ``R_axial``: the same of the doubled headings (near 1 with R near 0: two opposite ways);
* ``rayleigh_p``: the Rayleigh test's p-value against headings uniform on the circle
  (Zar's approximation); with n episodes uniform headings give R of about sqrt(pi / (4 n));
* ``mean_heading_deg``: the circular mean heading (null when R is 0);
* ``sector_shares``: shares of 8 sectors of 45 degrees, sector k centred on k * 45 degrees
  counterclockwise from +x (0: +x, 2: +y, 4: -x, wrapping at +-180, 6: -y), each covering
  [centre - 22.5, centre + 22.5);

and over all episodes the mean and median net distance, the mean net speed (net distance
/ episode duration in seconds, each episode weighing the same) and the pooled net speed
(all net distances / all durations, so episodes that end early weigh less). The figure
shows every episode's path from its start, one panel per learner, on the same equal axes.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

import jax  # noqa: E402
import numpy as np  # noqa: E402

import sqljax  # noqa: E402
from experiments import cli  # noqa: E402
from sqljax.learners import of_state  # noqa: E402
from sqljax.loops.evaluation import initial_explore  # noqa: E402

ENV_ID = "sqljax/AntAnyDirection-v0"
SECTORS = 8
#: Net displacement (m) below which an episode counts as not having moved.
MIN_DISTANCE = 0.1
#: Compass names of the 8 sectors (x east, y north), in sector order.
SECTOR_NAMES = ("E", "NE", "N", "NW", "W", "SW", "S", "SE")


def rollouts(agent: Any, episodes: int, seed: int, max_steps: int,
             deterministic: bool = False, env_id: str = ENV_ID) -> dict:
    """``episodes`` episodes of any learner's state in lockstep, one batched action call
    per step (its exploring actions, SQL: fresh xi; or its evaluation mode with
    ``deterministic``, SQL: xi = 0): per episode the torso's xy path (T_i, 2), its
    per-step planar speed, and its length; ``dt``, the seconds of one step."""
    import gymnasium as gym

    import sqljax.envs.gym_adapter  # noqa: F401  (registers the Ant tasks)

    envs = [gym.make(env_id, max_episode_steps=max_steps) for _ in range(episodes)]
    dt = float(envs[0].unwrapped.dt)
    obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)])
    paths = [[np.zeros(2)] for _ in envs]
    for i, env in enumerate(envs):
        paths[i][0] = np.asarray(env.unwrapped.data.qpos[:2], float).copy()
    speeds: list[list[float]] = [[] for _ in envs]
    alive = np.ones(episodes, bool)
    act = jax.jit(of_state(agent).act, static_argnames="deterministic")
    explore = initial_explore(agent, (episodes,))  # DDPG: its noise process per episode
    key = jax.random.key(seed)
    while alive.any():
        key, sub = jax.random.split(key)
        actions, explore = act(agent, explore, obs.astype(np.float32), sub, deterministic=deterministic)
        actions = np.asarray(actions)
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
            "lengths": [len(s) for s in speeds], "dt": dt}


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


def headings(displacements: np.ndarray, min_distance: float = MIN_DISTANCE) -> np.ndarray:
    """Heading (radians in (-pi, pi], counterclockwise from +x) of each episode's net
    displacement (E, 2); NaN for an episode that moved less than ``min_distance``."""
    d = np.asarray(displacements, float).reshape(-1, 2)
    h = np.arctan2(d[:, 1], d[:, 0])
    return np.where(np.linalg.norm(d, axis=1) >= min_distance, h, np.nan)


def _moved(headings: np.ndarray) -> np.ndarray:
    h = np.asarray(headings, float).ravel()
    return h[np.isfinite(h)]


def sector_index(headings: np.ndarray, n_sectors: int = SECTORS) -> np.ndarray:
    """Sector of each heading: sector k is centred on k * 360 / n_sectors degrees
    counterclockwise from +x and covers [centre - half a sector, centre + half a sector),
    so with 8 sectors 0 is +x, 2 is +y, 4 is -x (holding both sides of +-pi) and 6 is -y.
    Headings must be finite."""
    width = 2 * np.pi / n_sectors
    h = np.asarray(headings, float)
    return np.floor((h + width / 2) / width).astype(int) % n_sectors


def sector_histogram(headings: np.ndarray, n_sectors: int = SECTORS) -> np.ndarray:
    """Share of the headings in each sector (see `sector_index`), (n_sectors,), summing to 1;
    NaN headings (episodes that did not move) are left out; all zeros when none is left."""
    h = _moved(headings)
    counts = np.bincount(sector_index(h, n_sectors), minlength=n_sectors).astype(float)
    return counts / len(h) if len(h) else counts


def mean_resultant_length(headings: np.ndarray) -> float:
    """R = |mean of the unit vectors (cos h, sin h)| in [0, 1]: 1 when every heading is the
    same, 0 for headings evenly spread around the circle. NaN headings are left out; NaN
    when none is left."""
    h = _moved(headings)
    if not len(h):
        return float("nan")
    return float(min(1.0, np.hypot(np.cos(h).mean(), np.sin(h).mean())))


def circular_mean(headings: np.ndarray) -> float:
    """Direction (radians) of the mean unit heading vector; NaN when R is 0 (to rounding)
    or no heading is finite."""
    h = _moved(headings)
    c, s = (np.cos(h).mean(), np.sin(h).mean()) if len(h) else (0.0, 0.0)
    return float(np.arctan2(s, c)) if np.hypot(c, s) > 1e-12 else float("nan")


def rayleigh_p(n: int, r: float) -> float:
    """p-value of the Rayleigh test of n headings with mean resultant length r against the
    uniform distribution on the circle (Zar's approximation); NaN for n = 0."""
    if n <= 0 or not np.isfinite(r):
        return float("nan")
    rn = n * r
    return float(np.clip(np.exp(np.sqrt(1 + 4 * n + 4 * (n * n - rn * rn)) - (1 + 2 * n)), 0.0, 1.0))


def _finite_or_none(x: float, digits: int = 6) -> float | None:
    return round(float(x), digits) if np.isfinite(x) else None


def direction_summary(displacements: np.ndarray, durations: np.ndarray,
                      min_distance: float = MIN_DISTANCE, n_sectors: int = SECTORS) -> dict:
    """The spread of one learner's episodes: net displacements (E, 2) in metres and episode
    durations (E,) in seconds. Heading measures count only episodes that moved at least
    ``min_distance``; distances and speeds count every episode."""
    d = np.asarray(displacements, float).reshape(-1, 2)
    t = np.asarray(durations, float).ravel()
    if len(t) != len(d):
        raise ValueError(f"{len(d)} displacements but {len(t)} durations")
    h = headings(d, min_distance)
    moved = int(np.isfinite(h).sum())
    dist = np.linalg.norm(d, axis=1)
    speed = np.divide(dist, t, out=np.zeros_like(dist), where=t > 0)
    r = mean_resultant_length(h)
    return {
        "episodes": len(d),
        "moved": moved,
        "stationary": len(d) - moved,
        "min_distance": float(min_distance),
        "R": _finite_or_none(r),
        "R_axial": _finite_or_none(mean_resultant_length(2 * h)),
        "rayleigh_p": _finite_or_none(rayleigh_p(moved, r)),
        "mean_heading_deg": _finite_or_none(np.degrees(circular_mean(h)), 2),
        "sector_centres_deg": [round(360.0 * k / n_sectors, 3) for k in range(n_sectors)],
        "sector_shares": [round(float(x), 6) for x in sector_histogram(h, n_sectors)],
        "sectors_occupied": int(np.count_nonzero(sector_histogram(h, n_sectors))),
        "distance_mean": float(dist.mean()) if len(d) else float("nan"),
        "distance_median": float(np.median(dist)) if len(d) else float("nan"),
        "net_speed_mean": float(speed.mean()) if len(d) else float("nan"),
        "net_speed_pooled": float(dist.sum() / t.sum()) if t.sum() > 0 else float("nan"),
        "duration_mean": float(t.mean()) if len(d) else float("nan"),
        "headings_deg": [_finite_or_none(np.degrees(x), 3) for x in h],
        "distances": [round(float(x), 4) for x in dist],
        "durations": [round(float(x), 4) for x in t],
    }


def spread_of_run(run: dict, min_distance: float = MIN_DISTANCE) -> dict:
    """`direction_summary` of a `rollouts` result."""
    disp = np.asarray([p[-1] - p[0] for p in run["paths"]])
    return direction_summary(disp, np.asarray(run["lengths"], float) * run["dt"], min_distance)


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def format_shares(shares: list[float]) -> str:
    names = SECTOR_NAMES if len(shares) == len(SECTOR_NAMES) else [str(k) for k in range(len(shares))]
    return " ".join(f"{n} {x:.2f}" for n, x in zip(names, shares))


def plot_spread(results: dict[str, tuple[dict, dict]], out: Path, mode: str = "stochastic") -> Path:
    """Every episode's torso path from its start, seen from above, one panel per learner on
    the same equal axes; R and the mean net speed in each panel's title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(results)
    cols = min(n, 4)
    rows = -(-n // cols)
    extent = 1.0
    for run, _ in results.values():
        for path in run["paths"]:
            extent = max(extent, float(np.abs(path - path[0]).max()))
    extent *= 1.08
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.9 * rows), squeeze=False, layout="constrained")
    for ax, (name, (run, spread)) in zip(axes.ravel(), results.items()):
        cmap = plt.get_cmap("viridis")
        paths = run["paths"]
        for j, path in enumerate(paths):
            rel = path - path[0]
            color = cmap(j / max(1, len(paths) - 1))
            ax.plot(rel[:, 0], rel[:, 1], color=color, lw=0.9, alpha=0.8)
            ax.plot(rel[-1, 0], rel[-1, 1], "o", color=color, ms=2.5)
        ax.plot([0], [0], "k+", ms=9)
        r = "n/a" if spread["R"] is None else f"{spread['R']:.2f}"
        ax.set_title(f"{name}\nR = {r}, {spread['net_speed_mean']:.2f} m/s "
                     f"({spread['moved']}/{spread['episodes']} moved)", fontsize=9)
        ax.set_xlim(-extent, extent)
        ax.set_ylim(-extent, extent)
        ax.set_aspect("equal")
        ax.grid(alpha=0.3)
        ax.set_xlabel("x (m)")
        ax.set_ylabel("y (m)")
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    fig.suptitle(f"torso paths of {mode} episodes from the start (R: mean resultant length of "
                 "the headings; speed: net distance / duration)", fontsize=9)
    fig.savefig(out, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return out


def default_env(learners: Sequence[str]) -> str:
    """The AntAnyDirection version the first learner was trained on (its metadata's
    ``env_id``), else ``ENV_ID``."""
    try:
        env_id = sqljax.read_checkpoint_metadata(learners[0]).get("metadata", {}).get("env_id", "")
    except sqljax.CheckpointError:
        return ENV_ID
    return env_id if isinstance(env_id, str) and env_id.startswith("sqljax/AntAnyDirection-v") else ENV_ID


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
    p.add_argument("--env", default=None, help="task the episodes run on (default: the first "
                   f"learner's AntAnyDirection version from its metadata, else {ENV_ID})")
    p.add_argument("--min-distance", type=float, default=MIN_DISTANCE, help="net displacement (m) "
                   "below which an episode counts as stationary in the direction spread")
    p.add_argument("--no-fresh", action="store_true", help="leave out the freshly initialised learner")
    p.add_argument("--out", default="results/transfer", help="output directory")
    try:
        args = p.parse_args(argv)
        cli.check_at_least(args, {"episodes": 1, "max_steps": 1})
        if not np.isfinite(args.min_distance) or args.min_distance < 0:
            raise cli.RunError(f"--min-distance must be a finite number >= 0, got {args.min_distance}")
        names = ["/".join(Path(path).parts[-2:]) for path in args.learners]  # e.g. pretrain/seed0
        if len(set(names)) < len(names):
            raise cli.RunError("two learners would share a label: " + ", ".join(args.learners))
        agents = {name: sqljax.load_checkpoint(path) for name, path in zip(names, args.learners)}
        env_id = args.env or default_env(args.learners)
        if not env_id.startswith("sqljax/AntAnyDirection-v"):
            raise cli.RunError(f"--env must be an AntAnyDirection task (sqljax/AntAnyDirection-vN), got {env_id}")
    except cli.HANDLED_ERRORS as e:
        return cli.report_error(e, "interrupted")
    first = next(iter(agents.values()))
    agents = {f"pretrained {k}": v for k, v in agents.items()}
    sources = list(args.learners)
    if not args.no_fresh:
        learner = of_state(first)
        agents["fresh (untrained)"] = learner.init(jax.random.key(args.seed), first.config,
                                                   first.obs_dim, first.action_dim)
        sources.append(f"{learner.name} init")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    mode = "deterministic" if args.deterministic else "stochastic"
    results, spreads = {}, {}
    for name, agent in agents.items():
        run = rollouts(agent, args.episodes, args.seed, args.max_steps, args.deterministic, env_id)
        results[name] = (run, summarize(run))
        spreads[name] = (run, spread_of_run(run, args.min_distance))
        s, d = results[name][1], spreads[name][1]
        print(f"{name:>22}: planar speed {s['mean_planar_speed']:.2f} m/s, net distance "
              f"{s['net_distance_mean']:.1f} m, length {s['episode_length_mean']:.0f}, heading "
              f"R {s['heading_resultant_length']:.2f}, sectors {s['sectors_visited']}/{SECTORS}")
        print(f"{'':>22}  spread over {d['moved']}/{d['episodes']} moved: R {_fmt(d['R'], '.2f')} "
              f"(axial {_fmt(d['R_axial'], '.2f')}, Rayleigh p {_fmt(d['rayleigh_p'], '.2g')}), mean heading "
              f"{_fmt(d['mean_heading_deg'], '.0f')} deg, net speed {d['net_speed_mean']:.2f} m/s "
              f"(pooled {d['net_speed_pooled']:.2f}), "
              f"distance mean {d['distance_mean']:.1f} m / median {d['distance_median']:.1f} m")
        print(f"{'':>22}  sector shares: {format_shares(d['sector_shares'])}")
    summary = {"env_id": env_id, "episodes": args.episodes, "seed": args.seed, "mode": mode,
               "learners": {name: {"source": src, **results[name][1]} for name, src in zip(results, sources)}}
    stem = "locomotion_deterministic" if args.deterministic else "locomotion"
    (out / f"{stem}.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {plot(results, out / f'{stem}.png', mode)} and {out / f'{stem}.json'}")
    spread = {"env_id": env_id, "episodes": args.episodes, "max_steps": args.max_steps,
              "seed": args.seed, "mode": mode, "dt": next(iter(spreads.values()))[0]["dt"],
              "min_distance": args.min_distance,
              "sectors": f"{SECTORS} sectors of {360 // SECTORS} degrees, sector k centred on k * "
                         f"{360 // SECTORS} degrees counterclockwise from +x ({', '.join(SECTOR_NAMES)}), "
                         "covering [centre - half a sector, centre + half a sector)",
              "learners": {name: {"source": src, **spreads[name][1]} for name, src in zip(spreads, sources)}}
    stem = "direction_spread_deterministic" if args.deterministic else "direction_spread"
    (out / f"{stem}.json").write_text(json.dumps(spread, indent=2) + "\n")
    print(f"wrote {plot_spread(spreads, out / f'{stem}.png', mode)} and {out / f'{stem}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
