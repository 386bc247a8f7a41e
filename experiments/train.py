"""Train Soft Q-Learning on a gymnasium environment (host loop, one jitted call per step).

    python -m experiments.train --env Ant --steps 1000000 --seed 0 --out runs/ant
    python -m experiments.train --resume runs/ant            # continue after a stop
    python -m experiments.train --env AntHallway --init-from runs/pretrain/AntAnyDirection/seed0

Every SQLConfig field is a flag (``--reward-scale 30``, ``--hidden-sizes 256 256``); the
rest of the run (evaluation, checkpoints, logging) has its own flags. ``--help`` lists
them all. Writes, under the run directory: config.json, run.json, metrics.csv, a
TensorBoard event file, checkpoints/step_*/ (the last few), learning_curve.png.
Bad input ends with one line on stderr (``error: ...``) and exit status 2; a run that
diverges stops with exit status 1, keeping its last good checkpoint.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any, Sequence

import sqljax
from experiments import cli, plots
from sqljax.envs.gym_adapter import resolve_env_id, short_name
from sqljax.loops import host_loop
from sqljax.loops.host_loop import RunError, RunSpec

#: Default run length (env steps) per task, by the id's base name; others get 1M
#: (MuJoCo-sized tasks) or 100k.
TASK_STEPS: dict[str, int] = {
    "Ant": 1_000_000, "HalfCheetah": 1_000_000, "Hopper": 1_000_000, "Walker2d": 1_000_000,
    "Swimmer": 500_000, "Humanoid": 3_000_000, "Pendulum": 30_000, "MultiGoal": 20_000,
    "AntAnyDirection": 1_000_000, "AntHallwayWide": 1_000_000, "AntHallwayNarrow": 1_000_000,
    "AntUMaze": 1_000_000,
}
#: Preset per task when --preset is not given (default "code"): the multi-goal study's
#: settings, and the transfer study's temperature (alpha = 0.1) for the Ant tasks.
TASK_PRESETS: dict[str, str] = {
    "MultiGoal": "multigoal", "AntAnyDirection": "pretrain", "AntHallwayWide": "pretrain",
    "AntHallwayNarrow": "pretrain", "AntUMaze": "pretrain",
}

def build_parser() -> argparse.ArgumentParser:
    p = cli.Parser(
        prog="python -m experiments.train",
        description="Train Soft Q-Learning (Haarnoja et al. 2017) on a gymnasium environment "
                    "with continuous actions. Writes config.json, run.json, metrics.csv, a "
                    "TensorBoard event file, checkpoints and learning_curve.png under --out.")
    run = p.add_argument_group("run")
    run.add_argument("--env", help="gymnasium id or short name: Ant, HalfCheetah, Hopper, Walker2d, "
                     "Swimmer, Humanoid (v5), Pendulum, MultiGoal, AntAnyDirection, AntHallway(Wide|"
                     "Narrow), AntUMaze, or any id with a Box action space")
    run.add_argument("--steps", type=int, help="total env steps (default: per task, e.g. 1M for "
                     "MuJoCo, 30k for Pendulum; on --resume: the run's)")
    run.add_argument("--seed", type=int, help="seed of the learner, replay sampling and envs "
                     "(default 0; on --resume: the run's)")
    run.add_argument("--out", help="run directory (default runs/<env>/seed<seed>)")
    run.add_argument("--preset", choices=sorted(sqljax.PRESETS),
                     help="hyperparameter preset (default: code, or the task's: multigoal for "
                     "MultiGoal, pretrain for the Ant transfer tasks; with --init-from: the "
                     "pretrained run's config)")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last "
                     "complete checkpoint (the env starts a new episode)")
    run.add_argument("--init-from", metavar="CKPT_OR_RUN_DIR", help="start Q and the sampler from a "
                     "pretrained checkpoint (fine-tuning; optimisers and replay start fresh)")
    run.add_argument("--eval-every", type=int, help="env steps between evaluations "
                     "(default: steps/20, within [1000, 10000])")
    run.add_argument("--eval-episodes", type=int, default=5,
                     help="evaluation episodes per mode (stochastic and deterministic; default 5)")
    run.add_argument("--checkpoint-every", type=int, help="env steps between checkpoints "
                     "(default: steps/10, within [1000, 50000]); one is always written at the end")
    run.add_argument("--keep-checkpoints", type=int, default=3, help="checkpoints kept on disk (default 3)")
    run.add_argument("--log-every", type=int, help="env steps between metrics rows (default: "
                     "min(1000, eval-every)); update metrics are fetched from the device this often")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")

    cli.add_config_flags(p, "hyperparameters (SQLConfig fields; default: the preset's)")
    return p


def _base(env_id: str) -> str:
    return re.sub(r"-v\d+$", "", env_id.split("/")[-1])


def task_preset(env_id: str) -> str:
    """The preset a task trains with when no --preset is given."""
    return TASK_PRESETS.get(_base(env_id), "code")


def make_config(env_id: str, preset: str | None, overrides: dict[str, Any],
                base: sqljax.SQLConfig | None = None) -> sqljax.SQLConfig:
    """The run's SQLConfig: ``base`` (a pretrained run's) or the preset (default: the
    task's) with the task's reward scale, then the command line's overrides."""
    try:
        if base is not None and preset is None:
            return base.replace(**overrides)
        name = preset or task_preset(env_id)
        return sqljax.SQLConfig.preset(name, task=env_id, **overrides)
    except (ValueError, TypeError) as e:
        raise RunError(cli.config_error(e)) from None


def default_steps(env_id: str) -> int:
    base = _base(env_id)
    if base in TASK_STEPS:
        return TASK_STEPS[base]
    return 1_000_000 if env_id.endswith("-v5") or env_id.endswith("-v4") else 100_000


def _schedule(args: argparse.Namespace, steps: int) -> dict[str, int]:
    eval_every = args.eval_every or max(1000, min(10_000, steps // 20))
    return dict(
        eval_every=eval_every,
        checkpoint_every=args.checkpoint_every or max(1000, min(50_000, steps // 10)),
        log_every=args.log_every or min(1000, eval_every),
    )


def spec_from_args(args: argparse.Namespace) -> RunSpec:
    """A new run's spec from the command line."""
    if not args.env:
        raise RunError("--env is required (or --resume RUN_DIR to continue a run)")
    env_id = resolve_env_id(args.env)
    seed = 0 if args.seed is None else args.seed
    base = None
    if args.init_from:
        src = host_loop.find_checkpoint(args.init_from)
        try:
            base = sqljax.SQLConfig.from_dict(sqljax.read_checkpoint_metadata(src)["config"])
        except (ValueError, KeyError) as e:
            raise RunError(f"--init-from {src}: unreadable config ({e})") from None
    cfg = make_config(env_id, args.preset, cli.config_overrides(args), base)
    steps = args.steps or default_steps(env_id)
    if args.out:
        out = Path(args.out)
    else:
        kind = "-finetune" if args.init_from else ""
        out = Path("runs") / f"{short_name(env_id)}{kind}" / f"seed{seed}"
    if (out / host_loop.RUN_FILE).exists() or (out / host_loop.CHECKPOINT_DIR).exists():
        raise RunError(f"{out} already holds a run; continue it with --resume {out}, or choose "
                       "another directory with --out")
    return RunSpec(env_id=env_id, config=cfg, seed=seed, steps=steps, out=out,
                   eval_episodes=args.eval_episodes, keep_checkpoints=args.keep_checkpoints,
                   progress=not args.no_progress, init_from=args.init_from, preset=args.preset,
                   **_schedule(args, steps))


def spec_from_resume(args: argparse.Namespace) -> RunSpec:
    """The spec of the run in ``--resume DIR``; a longer ``--steps`` extends it."""
    run_dir = Path(args.resume)
    run = host_loop.read_run(run_dir)
    if cli.config_overrides(args) or args.preset or args.init_from:
        given = [cli.flag(k) for k in cli.config_overrides(args)] + (["--preset"] if args.preset else []) + (
            ["--init-from"] if args.init_from else [])
        raise RunError(f"--resume continues a run with its own settings; drop {', '.join(given)} "
                       "(start a new run to change them)")
    ckpt = host_loop.latest_checkpoint(run_dir)
    if ckpt is None:
        raise RunError(f"cannot resume {run_dir}: it holds no complete checkpoint (the run stopped "
                       "before its first checkpoint); start it again without --resume")
    meta = sqljax.read_checkpoint_metadata(ckpt)
    cfg = sqljax.SQLConfig.from_dict(meta["config"])
    env_id = run["env_id"]
    if args.env:
        asked = resolve_env_id(args.env)
        if asked != env_id:
            from sqljax.envs.gym_adapter import env_info

            info = env_info(asked)
            if (info.obs_dim, info.action_dim) != (int(meta["obs_dim"]), int(meta["action_dim"])):
                raise RunError(
                    f"checkpoint {ckpt} has observation size {meta['obs_dim']} and action size "
                    f"{meta['action_dim']}, but {asked} has observation size {info.obs_dim} and "
                    f"action size {info.action_dim}")
            raise RunError(f"{run_dir} is a run on {env_id}, not {asked}; omit --env to resume it "
                           "(or use --init-from to start a new run on another env)")
    if args.seed is not None and args.seed != run["seed"]:
        print(f"note: --seed {args.seed} ignored: {run_dir} continues with its seed {run['seed']}",
              file=sys.stderr)
    steps = args.steps or int(run["steps"])
    keys = ("eval_every", "checkpoint_every", "log_every")
    sched = {k: getattr(args, k) or int(run[k]) for k in keys}
    return RunSpec(env_id=env_id, config=cfg, seed=int(run["seed"]), steps=steps, out=run_dir,
                   eval_episodes=int(run.get("eval_episodes", args.eval_episodes)),
                   keep_checkpoints=args.keep_checkpoints, progress=not args.no_progress,
                   init_from=run.get("init_from"), preset=run.get("preset"), **sched)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        cli.check_at_least(args, dict.fromkeys(("steps", "eval_every", "eval_episodes", "checkpoint_every",
                                                "keep_checkpoints", "log_every"), 1))
        if args.resume:
            spec, resume = spec_from_resume(args), True
        else:
            spec, resume = spec_from_args(args), False
        if not resume:
            print(f"run {spec.out}: {spec.env_id}, seed {spec.seed}, {spec.steps} steps, "
                  f"reward_scale {spec.config.reward_scale}, preset "
                  f"{spec.preset or ('(from --init-from)' if spec.init_from else task_preset(spec.env_id))}")
        try:
            summary = host_loop.train(spec, resume=resume)
        finally:  # also after a stop: the curve up to it
            plots.plot_learning_curve(spec.out, title=f"SQL on {spec.env_id}, seed {spec.seed}")
    except cli.HANDLED_ERRORS as e:
        return cli.report_error(e, "interrupted; continue with --resume from the last checkpoint")
    ev = summary["last_eval"]
    msg = (f"done: {summary['env_steps']} env steps, {summary['updates']} updates, "
           f"{summary['episodes']} episodes")
    if ev:
        msg += (f"; evaluation at step {ev['step']}: stochastic {ev['stochastic']:.1f} ± "
                f"{ev['stochastic_std']:.1f}, deterministic {ev['deterministic']:.1f} ± "
                f"{ev['deterministic_std']:.1f}")
    print(msg)
    print(f"outputs in {summary['run_dir']} (last checkpoint {summary['checkpoint']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
