"""A frame strip of one push: learners side by side on the same episode of the
robustness study (:mod:`experiments.studies.robustness`), around its first push.

    python -m experiments.studies.push_strip --task Hopper --learners zoo/Hopper/code zoo/Hopper/ddpg-code \\
        --seed 0 --out results/robustness/Hopper/push_strip.png [--push 160] [--gif strip.gif]

The seed-``--seed`` learner of each directory (SQL with xi = 0, DDPG mu(s); ``--stochastic``:
exploring actions) plays the study's episode ``--episode`` of ``--study-seed`` (default: its
first whose first push leaves room for every ``--times``): its reset seed, push schedule,
acting keys and time limit, pushes of ``--push`` newtons (default: the study's grid point of
one robot weight). A row per learner, a column per time from the first push's start (the
camera follows the torso), each frame titled with the return so far; a row's label gives
the return and whether and when the robot fell (the episode terminated). ``--gif``: the
learners side by side, every fourth control step from the first time to the last.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import jax
import numpy as np

from experiments import cli
from experiments.plots import pyplot
from experiments.studies.robustness import ROBUSTNESS_TAG, LearnerDir, load_learner_dirs
from sqljax import seeding
from sqljax.envs import perturbations as pt
from sqljax.envs.gym_adapter import resolve_env_id, short_name
from sqljax.loops import RunError, evaluation

DEFAULT_TIMES = (-0.2, 0.0, 0.2, 0.5, 1.0, 2.0)
GIF_STRIDE = 4
MAX_EPISODES = 1000  # of the study's episode seeds searched for a push that fits


def frame_steps(push_step: int, times: Sequence[float], dt: float, horizon: int) -> list[int]:
    """The step counts (frames after that many control steps) at ``times`` seconds from the
    push starting at control step ``push_step``; RunError if one falls outside [0, horizon]."""
    steps = [int(push_step) + int(round(t / dt)) for t in times]
    bad = [f"{t:+g} s" for t, s in zip(times, steps) if not 0 <= s <= horizon]
    if bad:
        raise RunError(f"--times {', '.join(bad)} fall outside the episode (push at step {push_step}, "
                       f"{horizon} steps of {dt:g} s)")
    return steps


def pick_episode(seed: int, episode_seeds: Sequence[int], times: Sequence[float], dt: float, horizon: int,
                 gap: tuple[int, int] = pt.PUSH_GAP) -> tuple[int, int, int]:
    """(index, episode seed, first push step) of the first episode whose first push leaves
    room for every time; RunError if none does."""
    for i, es in enumerate(episode_seeds):
        starts, _ = pt.push_schedule(seed, es, horizon, gap)
        if len(starts) and 0 <= starts[0] + round(min(times) / dt) and starts[0] + round(max(times) / dt) <= horizon:
            return i, int(es), int(starts[0])
    raise RunError(f"no episode among {len(episode_seeds)} has a first push leaving room for --times "
                   f"{min(times):+g} to {max(times):+g} s")


class Recorder:
    """A :class:`pt.PerturbedEnv` stepped by :func:`evaluation.evaluate` that keeps the
    rewards, the root's x velocity after every step (``xvel`` (T+1,), ``qvel[0]``), and
    frames after the wanted step counts and at the end (``frames``: count -> RGB)."""

    def __init__(self, env: pt.PerturbedEnv, wanted: Sequence[int] = ()):
        self.env, self.wanted, self.time_limit = env, set(wanted), env.time_limit
        self.rewards, self.xvel, self.terminated = [], [], False
        self.frames: dict[int, np.ndarray] = {}

    def _see(self, end: bool = False) -> None:
        self.xvel.append(float(self.env.env.unwrapped.data.qvel[0]))
        if len(self.rewards) in self.wanted or (end and self.wanted):
            self.frames[len(self.rewards)] = np.asarray(self.env.render())

    def reset(self, seed: int | None = None) -> np.ndarray:
        obs = self.env.reset(seed)
        self._see()
        return obs

    def step(self, action):
        obs, reward, term, trunc, info = self.env.step(action)
        self.rewards.append(reward)
        self.terminated = term
        self._see(end=term or trunc)
        return obs, reward, term, trunc, info


def play(ld: LearnerDir, seed: int, perturbation: pt.Perturbation | None, episode_seed: int, wanted: Sequence[int],
         limit: int, deterministic: bool = True, size: int = 240) -> Recorder:
    """One episode of ``ld``'s seed-``seed`` learner, rendered at the ``wanted`` step counts."""
    if seed not in ld.seed_ids:
        raise RunError(f"{ld.path} has no seed{seed}/ (seeds {', '.join(map(str, ld.seed_ids))})")
    env = pt.PerturbedEnv(ld.env_id, perturbation, max_episode_steps=limit, render_mode="rgb_array",
                          width=size, height=size)
    try:
        env.setup_mujoco_camera(follow=True, fast=True)
        rec = Recorder(env, wanted)
        p = ld.seed_ids.index(seed)
        evaluation.evaluate(ld.agents, seeding.seed_mesh(jax.devices()[:1]), {p: [rec]}, {p: [episode_seed]},
                            ld.keys, np.array([deterministic]))
    finally:
        env.close()
    return rec


def _row_label(ld: LearnerDir, rec: Recorder, push_step: int, dt: float) -> str:
    end = f"fell (terminated) at {(len(rec.rewards) - push_step) * dt:+.2f} s" if rec.terminated else "no fall"
    return f"{ld.learner.upper()} ({ld.path})\nreturn {sum(rec.rewards):.0f}, {len(rec.rewards)} steps\n{end}"


def draw(out: Path, dirs, recs, steps: Sequence[int], push_step: int, dt: float, title: str,
         direction: float) -> None:
    """The strip: a row per learner, a column per step count; an arrow where the push starts."""
    plt = pyplot()
    fig, axes = plt.subplots(len(dirs), len(steps), figsize=(1.9 * len(steps) + 0.6, 2.2 * len(dirs) + 0.5),
                             squeeze=False)
    for r, (ld, rec) in enumerate(zip(dirs, recs)):
        cum = np.concatenate([[0.0], np.cumsum(rec.rewards)])
        for c, s in enumerate(steps):
            ax = axes[r, c]
            shown = min(s, len(rec.rewards))
            ax.imshow(rec.frames[shown], alpha=1.0 if s == shown else 0.35)
            at = f"{(s - push_step) * dt:+.2f} s"
            head = "push starts" if s == push_step else at
            ended = f"{at}\n(ended {(shown - push_step) * dt:+.2f} s; its last frame)"
            ax.set_title(f"{head}\nR so far {cum[shown]:.0f}" if s == shown else ended, fontsize=8)
            if s == push_step:
                ax.annotate("", xy=(0.5 + 0.25 * direction, 0.9), xytext=(0.5, 0.9), xycoords="axes fraction",
                            arrowprops=dict(arrowstyle="-|>", color="red", lw=2.5))
            ax.set(xticks=[], yticks=[])
            if c == 0:
                ax.set_ylabel(_row_label(ld, rec, push_step, dt), fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)


def write_gif(path: Path, dirs, recs, counts: Sequence[int], push_step: int, dt: float) -> None:
    """The learners' frames side by side at the step ``counts``, in real time."""
    import imageio.v3 as iio
    from PIL import Image, ImageDraw

    images = []
    for n in counts:
        row = []
        for ld, rec in zip(dirs, recs):
            img = Image.fromarray(rec.frames[min(n, len(rec.rewards))])
            ImageDraw.Draw(img).text((4, 4), f"{ld.learner.upper()} {(n - push_step) * dt:+.2f} s", fill=(0, 0, 0))
            row.append(np.asarray(img))
        images.append(np.concatenate(row, axis=1))
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, np.stack(images), duration=round(1000 * GIF_STRIDE * dt), loop=0)


def build_parser() -> argparse.ArgumentParser:
    p = cli.Parser(prog="python -m experiments.studies.push_strip", description=__doc__.split("\n\n")[0],
                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--learners", nargs="+", required=True, metavar="DIR", help="directories of seed<i>/ exports")
    p.add_argument("--task", help="the learners' task (checked against their checkpoints)")
    p.add_argument("--seed", type=int, default=0, help="which seed<i>/ learner of each directory")
    p.add_argument("--push", type=float, help="push force in newtons (default: one robot weight, as the study)")
    p.add_argument("--push-duration", type=float, default=pt.PUSH_DURATION, help="seconds a push lasts")
    p.add_argument("--times", type=float, nargs="+", default=list(DEFAULT_TIMES), help="frame times (s) from the push")
    p.add_argument("--study-seed", type=int, default=0, help="the robustness study's --seed")
    p.add_argument("--episode", type=int, help="the study's episode index (default: first that fits --times)")
    p.add_argument("--stochastic", action="store_true", help="exploring actions instead of the evaluation mode")
    p.add_argument("--max-episode-steps", type=int, help="time limit (default: the study's)")
    p.add_argument("--size", type=int, default=240, help="frame width and height in pixels")
    p.add_argument("--out", help="PNG path (default results/robustness/<task>/push_strip.png)")
    p.add_argument("--gif", help="also an animated GIF of the learners side by side")
    return p


def run(argv: Sequence[str] | None = None) -> dict:
    """The strip of the command line ``argv``; returns what it showed (errors as exceptions)."""
    args = build_parser().parse_args(argv)
    cli.check_at_least(args, {"seed": 0, "study_seed": 0, "episode": 0, "max_episode_steps": 1, "size": 16})
    times = sorted(set(args.times))
    dirs = load_learner_dirs(args.learners, seeding.seed_mesh(jax.devices()[:1]), args.study_seed)
    env_id = dirs[0].env_id
    if args.task and resolve_env_id(args.task) != env_id:
        raise RunError(f"--task {args.task} but the learners were trained on {env_id}")
    probe = pt.PerturbedEnv(env_id, max_episode_steps=args.max_episode_steps or min(d.max_steps for d in dirs))
    dt, horizon, weight = float(probe.env.unwrapped.dt), probe.time_limit, pt.robot_weight(probe)
    push = args.push if args.push is not None else pt.default_magnitudes("push", probe)[pt.PUSH_WEIGHTS.index(1.0)]
    probe.close()
    if not push > 0:
        raise RunError(f"--push must be > 0 newtons, got {push:g}")
    perturbation = pt.Perturbation("push", push, args.study_seed, push_duration=args.push_duration)
    first = args.episode or 0
    candidates = seeding.eval_env_seeds(args.study_seed, 0, ROBUSTNESS_TAG, max(MAX_EPISODES, first + 1))[first:]
    index, episode_seed, push_step = pick_episode(args.study_seed, candidates[:1] if args.episode is not None
                                                  else candidates, times, dt, horizon, perturbation.push_gap)
    index += first
    steps = frame_steps(push_step, times, dt, horizon)
    counts = list(range(steps[0], steps[-1] + 1, GIF_STRIDE)) if args.gif else []
    recs = [play(d, args.seed, perturbation, episode_seed, steps + counts, horizon, not args.stochastic, args.size)
            for d in dirs]
    if int(recs[0].env.push_starts[0]) != push_step:
        raise RunError(f"the env pushed first at step {recs[0].env.push_starts[0]}, not {push_step}")
    direction = float(recs[0].env.push_directions[0, 0])
    task = short_name(env_id)
    out = Path(args.out) if args.out else Path("results/robustness") / task / "push_strip.png"
    mode = "exploring actions" if args.stochastic else "evaluation mode"
    title = (f"{task}: push of {push:g} N ({push / weight:.2g} x weight) toward {'+' if direction > 0 else '-'}x "
             f"for {args.push_duration:g} s at t = {push_step * dt:.2f} s (step {push_step}); study episode {index} "
             f"(seed {episode_seed}), learner seed {args.seed}, {mode}")
    draw(out, dirs, recs, steps, push_step, dt, title, direction)
    print(f"{title}\n" + "\n".join(_row_label(d, r, push_step, dt).replace("\n", "; ") for d, r in zip(dirs, recs)))
    print(f"wrote {out}")
    if args.gif:
        write_gif(Path(args.gif), dirs, recs, counts, push_step, dt)
        print(f"wrote {args.gif}")
    return {"out": out, "push": push, "push_step": push_step, "direction": direction, "episode_seed": episode_seed,
            "steps": steps, "dt": dt, "records": recs, "dirs": dirs, "horizon": horizon}


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run_main(lambda: run(argv), "interrupted")


if __name__ == "__main__":
    sys.exit(main())
