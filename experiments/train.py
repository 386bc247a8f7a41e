"""Train Soft Q-Learning on one seed: the training driver with N = 1.

    python -m experiments.train --env Ant --steps 1000000 --seed 0 --out runs/ant
    python -m experiments.train --resume runs/ant            # continue after a stop
    python -m experiments.train --env AntHallway --init-from runs/pretrain/AntAnyDirection/seed0
    python -m experiments.train --env gymnax:Pendulum-v1     # a JAX-native env: compiled loop

Seed S is seed S of ``experiments.bench`` (key ``fold_in(key(0), S)``): the same run.
Every SQLConfig field is a flag (``--reward-scale 30``, ``--hidden-sizes 256 256``); the
rest of the run (evaluation, checkpoints, logging) has its own flags. ``--help`` lists
them all. Writes the run directory of :mod:`sqljax.store.run_dir` (run.json,
config.json, seed<S>/metrics.csv and TensorBoard events, checkpoints/step_*/) and
learning_curve.png. Bad input ends with one line on stderr (``error: ...``) and exit
status 2; a run that diverges stops with exit status 1, keeping its last good checkpoint.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from experiments import cli, plots
from sqljax.envs import registry
from sqljax.loops import RunError, multi_seed
from sqljax.store import run_dir as rd


def build_parser() -> argparse.ArgumentParser:
    p = cli.Parser(
        prog="python -m experiments.train",
        description="Train Soft Q-Learning (Haarnoja et al. 2017) on one seed of an environment "
                    "with continuous actions. Writes run.json, config.json, seed<S>/metrics.csv, "
                    "TensorBoard events, checkpoints and learning_curve.png under --out.")
    run = cli.add_run_flags(p, keep_checkpoints=3)
    run.add_argument("--seed", type=int, help="seed index S (default 0; on --resume: the run's); "
                     "the run's key is fold_in(key(0), S), as seed S of experiments.bench")
    cli.add_config_flags(p, "hyperparameters (SQLConfig fields; default: the preset's)")
    return p


def spec_from_args(args: argparse.Namespace) -> rd.RunSpec:
    """A new run's spec from the command line."""
    if not args.env:
        raise RunError("--env is required (or --resume RUN_DIR to continue a run)")
    env_id = cli.task_env_id(args.env)
    seed = 0 if args.seed is None else args.seed
    base = cli.pretrained_config(args.init_from) if args.init_from else None
    cfg = cli.make_config(env_id, args.preset, cli.config_overrides(args), base)
    steps = args.steps or registry.default_steps(env_id)
    if args.out:
        out = Path(args.out)
    else:
        kind = "-finetune" if args.init_from else ""
        out = Path("runs") / f"{registry.short_name(env_id)}{kind}" / f"seed{seed}"
    spec = rd.RunSpec(env_id=env_id, config=cfg, seed_ids=(seed,), steps=steps, out=out,
                      keep_checkpoints=args.keep_checkpoints, progress=not args.no_progress,
                      init_from=args.init_from, preset=args.preset, devices=args.devices,
                      **cli.schedule(args, steps, registry.is_jax_native(env_id)))
    rd.check_new(spec)  # before anything is built (the run checks again, holding the directory)
    return spec


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        cli.check_run_flags(args)
        if args.seed is not None and args.seed < 0:
            raise RunError(f"--seed must be an integer >= 0, got {args.seed}")
        resume = bool(args.resume)
        spec = cli.spec_from_resume(args) if resume else spec_from_args(args)
        if resume and args.seed is not None and (args.seed,) != spec.seed_ids:
            print(f"note: --seed {args.seed} ignored: {spec.out} continues with its seed "
                  f"{spec.seed_ids[0]}", file=sys.stderr)
        if len(spec.seed_ids) != 1:
            raise RunError(f"{spec.out} holds {len(spec.seed_ids)} seeds; continue it with "
                           "experiments.bench --resume")
        seed = spec.seed_ids[0]
        if not resume:
            preset = spec.preset or ("(from --init-from)" if spec.init_from
                                     else registry.default_preset(spec.env_id))
            print(f"run {spec.out}: {spec.env_id}, seed {seed}, {spec.steps} steps, "
                  f"reward_scale {spec.config.reward_scale}, preset {preset}")
        try:
            summary = multi_seed.train(spec, resume=resume)
        finally:  # also after a stop: the curve up to it
            if (spec.out / f"seed{seed}" / rd.METRICS_FILE).exists():
                cli.after_run(plots.plot_learning_curve, spec.out,
                              title=f"SQL on {spec.env_id}, seed {seed}")
    except cli.HANDLED_ERRORS as e:
        return cli.report_error(e, "interrupted; continue with --resume from the last checkpoint")
    msg = (f"done: {summary['env_steps']} env steps, {summary['updates'][0]} updates, "
           f"{summary['episodes'][0]} episodes")
    if summary["evals"]:
        ev = summary["evals"][-1]
        msg += (f"; evaluation at step {ev['step']}: stochastic {ev['stochastic'][0]:.1f}, "
                f"deterministic {ev['deterministic'][0]:.1f}")
    print(msg)
    print(f"outputs in {summary['run_dir']} (last checkpoint {summary['checkpoint']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
