"""Train a learner (Soft Q-Learning by default; ``--learner ddpg`` for DDPG and, with
``--preset modern``, TD3) on one seed: the training driver with N = 1.

    python -m experiments.train --env Ant --steps 1000000 --seed 0 --out runs/ant
    python -m experiments.train --learner ddpg --preset modern --env Hopper   # TD3
    python -m experiments.train --resume runs/ant            # continue after a stop
    python -m experiments.train --env AntHallway --init-from runs/pretrain/AntAnyDirection/seed0
    python -m experiments.train --env gymnax:Pendulum-v1     # a JAX-native env: compiled loop

Seed S is seed S of ``experiments.bench`` (key ``fold_in(key(0), S)``): the same run.
Every field of the learner's config is a flag (``--reward-scale 30``, ``--hidden-sizes 256
256``); the
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
from sqljax import learners
from sqljax.envs import registry
from sqljax.loops import RunError, multi_seed
from sqljax.store import run_dir as rd


def build_parser(learner: learners.Learner | None = None) -> argparse.ArgumentParser:
    learner = learner or learners.get(None)
    p = cli.Parser(
        prog="python -m experiments.train",
        description="Train a learner (default Soft Q-Learning, Haarnoja et al. 2017; --learner "
                    "ddpg for DDPG and TD3) on one seed of an environment with continuous "
                    "actions. Writes run.json, config.json, seed<S>/metrics.csv, TensorBoard "
                    "events, checkpoints and learning_curve.png under --out.")
    cli.add_learner_flag(p)
    run = cli.add_run_flags(p, keep_checkpoints=3, learner=learner)
    run.add_argument("--seed", type=int, help="seed index S (default 0; on --resume: the run's); "
                     "the run's key is fold_in(key(0), S), as seed S of experiments.bench")
    cli.add_config_flags(p, f"hyperparameters ({learner.config_class.__name__} fields; default: "
                         "the preset's)", learner=learner)
    return p


def spec_from_args(args: argparse.Namespace) -> rd.RunSpec:
    """A new run's spec from the command line."""
    seed = 0 if args.seed is None else args.seed
    learner = learners.get(args.learner)

    def default_out(env_id, preset, overrides):
        kind = "-finetune" if args.init_from else ""
        name = "" if learner.name == learners.DEFAULT else f"-{learner.name}"
        return Path("runs") / f"{registry.short_name(env_id)}{name}{kind}" / f"seed{seed}"

    return cli.new_run_spec(args, (seed,), default_out)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser(cli.chosen_learner(argv))
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
        learner = learners.of_config(spec.config)
        if not resume:
            preset = spec.preset or ("(from --init-from)" if spec.init_from
                                     else learner.task_preset(spec.env_id))
            scale = (f", reward_scale {spec.config.reward_scale}"
                     if hasattr(spec.config, "reward_scale") else "")
            print(f"run {spec.out}: {learner.title} on {spec.env_id}, seed {seed}, {spec.steps} "
                  f"steps{scale}, preset {preset}")
        try:
            summary = multi_seed.train(spec, resume=resume)
        finally:  # also after a stop: the curve up to it
            if (spec.out / f"seed{seed}" / rd.METRICS_FILE).exists():
                cli.after_run(plots.plot_learning_curve, spec.out,
                              title=f"{learner.title} on {spec.env_id}, seed {seed}")
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
