"""Skill transfer (paper §5.3): pretrain a maximum-entropy Ant, fine-tune it on new tasks,
and compare with training the same tasks from scratch for as many steps.

    python -m experiments.studies.transfer --pretrain-steps 30000 --finetune-steps 10000 --seeds 2 \\
        --tasks AntHallwayWide --out runs/transfer/small
    python -m experiments.studies.transfer --pretrained runs/transfer/small/pretrain --out runs/transfer/other
    make transfer ARGS="--seeds 4 --out runs/transfer/big"

1. **Pretrain** N seeds on ``AntAnyDirection`` (reward: speed in any direction) with the
   ``pretrain`` preset (alpha = 0.1), N seeds in lockstep (``sqljax.loops.multi_seed``).
   ``--pretrained DIR`` skips this and starts from an existing run or checkpoint.
2. Per task (``--tasks``; default the wide and narrow hallways and the U-maze):
   **fine-tune** seed i from pretrained seed i (``sqljax.finetune_state``: Q, target and
   sampler copied, optimisers and replay fresh) with the paper's schedules over the
   first ``anneal_steps`` updates: reward scale annealed log-linearly to
   ``--final-reward-scale`` (alpha 0.1 -> 0.001) and xi drawn from a fixed bank of
   ``--noise-bank-size`` vectors whose active size shrinks linearly to 1; and train the
   task **from scratch** with the pretraining's hyperparameters for the same number of
   env steps (``--scratch-schedules`` gives it the same schedules).
3. Per task, compare the fine-tuned and scratch seeds on the final evaluation and on the
   average over all evaluations (the normalised area under the learning curve: "learns
   faster"), both evaluation modes, with stratified-bootstrap CIs (experiments/stats.py)
   and a bootstrap CI of the difference of means.

``--learner ddpg`` runs the three arms with DDPG (TD3: ``--preset modern``); its config
has no fine-tuning schedules, so fine-tuning copies the pretrained networks (optimisers
and replay fresh) and the schedule flags are refused.

Anneal span: the paper anneals over 20 epochs of 10,000 steps (200k). By default the span
is ``--anneal-fraction`` (0.2) of the fine-tuning steps, at most 200k; ``--anneal-steps``
sets it directly. It counts **updates**, which start after ``learning_starts`` env steps.

Writes under ``--out`` (default ``runs/transfer``): ``pretrain/`` and ``<task>/finetune/``,
``<task>/scratch/`` (multi-seed run directories, each with its own summary.json and
curves.png), ``summary.json`` and ``transfer.png`` (one column per task, fine-tuned and
scratch curves with their CI bands, stochastic and deterministic evaluation). Both are
rewritten after every task, so a stopped study keeps what it finished; the same command
again continues it (finished runs are skipped, a stopped one resumes from its last
checkpoint). Bad input ends with one line on stderr (``error: ...``, exit status 2); a
diverged run stops the study with exit status 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import sqljax
from experiments import bench, cli, plots, stats
from sqljax import learners
from sqljax.envs.gym_adapter import env_info, resolve_env_id, short_name
from sqljax.envs.registry import default_steps
from sqljax.loops import RunError
from sqljax.loops import multi_seed as ms
from sqljax.store import run_dir as rd

SUMMARY_FILE = "summary.json"
PLOT_FILE = "transfer.png"
PRETRAIN_ENV = "sqljax/AntAnyDirection-v0"
DEFAULT_TASKS = ("AntHallwayWide", "AntHallwayNarrow", "AntUMaze")
#: The paper's schedule span: 20 epochs of 10,000 env steps.
PAPER_ANNEAL_STEPS = 200_000
MODES = bench.MODES
ARMS = ("finetune", "scratch")


# Fine-tuning fields set by the study's own flags, not by the config flags.
_SCHEDULE_FIELDS = ("anneal_steps", "final_reward_scale", "noise_bank_size")
# The study's flags of those schedules: a learner whose config lacks the fields refuses them.
_SCHEDULE_FLAGS = ("anneal_fraction", "anneal_steps", "final_reward_scale", "noise_bank_size",
                   "scratch_schedules")
_EVALUATION_WITH_SCHEDULES = ("stochastic: fresh xi each step (the authors' protocol; the fine-tuned "
                              "learner acts with its own annealed temperature); deterministic: xi = 0")


def has_schedules(learner: learners.Learner) -> bool:
    """Whether the learner's config has the fine-tuning schedules' fields."""
    return set(_SCHEDULE_FIELDS) <= {f.name for f in dataclasses.fields(learner.config_class)}


def build_parser(learner: learners.Learner | None = None) -> argparse.ArgumentParser:
    """The command line of ``learner`` (default SQL): its presets and config flags; the
    schedule flags default to None for a learner without the schedules."""
    learner = learner or learners.get(None)
    on = has_schedules(learner)
    what = (" (alpha = 0.1), fine-tune it on new Ant tasks with annealed temperature and fixed noise"
            if on else ", fine-tune it on new Ant tasks (networks copied, optimisers and replay fresh)")
    p = cli.Parser(prog="python -m experiments.studies.transfer",
                description=f"Skill transfer: pretrain {learner.title} on AntAnyDirection{what}, and "
                            "compare with training them from scratch (N seeds, bootstrap CIs). "
                            "Writes summary.json and transfer.png under --out.",
                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    cli.add_learner_flag(p)
    st = p.add_argument_group("study")
    st.add_argument("--pretrain-steps", type=int, default=default_steps(PRETRAIN_ENV),
                    help="env steps per seed of pretraining on AntAnyDirection")
    st.add_argument("--finetune-steps", type=int, default=1_000_000,
                    help="env steps per seed on each task, fine-tuned and from scratch alike")
    st.add_argument("--seeds", type=int, default=8, help="seeds N (a multiple of the device count)")
    st.add_argument("--first-seed", type=int, default=0, help="seed indices first-seed .. "
                    "first-seed+N-1")
    st.add_argument("--seed", type=int, default=0, help="base seed: seed i's key is fold_in(key(base), "
                    "i), for pretraining, fine-tuning and scratch alike")
    st.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS), metavar="TASK",
                    help="tasks to transfer to (env names with the Ant's spaces)")
    st.add_argument("--out", default="runs/transfer", help="study directory")
    st.add_argument("--pretrained", metavar="CKPT_OR_RUN_DIR", help="skip pretraining: start from "
                    "this run, checkpoint or directory of seed<i>/ learners (zoo/...); seed i from "
                    "its seed i (one learner: every seed from it); its hyperparameters are the study's")
    st.add_argument("--preset", choices=sorted(learner.presets), default=learner.task_preset(PRETRAIN_ENV),
                    help="hyperparameter preset of pretraining (and of the scratch runs)")
    refused = "" if on else f"; {learner.config_class.__name__} has none: refused"
    sc = p.add_argument_group("fine-tuning schedules (paper: alpha 0.1 -> 0.001 and K_xi -> 1 over "
                              f"20 epochs of 10k steps){refused}")
    sc.add_argument("--anneal-fraction", type=float, default=0.2 if on else None, help="schedule span as a "
                    f"fraction of --finetune-steps (at most {PAPER_ANNEAL_STEPS})")
    sc.add_argument("--anneal-steps", type=int, help="schedule span in updates (overrides "
                    "--anneal-fraction; 0: no schedules)")
    sc.add_argument("--final-reward-scale", type=cli.optional_float, default=1000.0 if on else None,
                    metavar="X", help="reward scale (1 / alpha) reached at the end of the span (0 / none: "
                    "keep the pretraining's)")
    sc.add_argument("--noise-bank-size", type=int, default=16 if on else None, help="K_xi: fixed noise "
                    "vectors acting draws from, shrinking linearly to 1 (0: fresh noise, as in pretraining)")
    sc.add_argument("--scratch-schedules", action="store_true", default=False if on else None,
                    help="give the scratch runs the same schedules (default: the pretraining's "
                    "constant alpha and fresh noise)")
    ev = p.add_argument_group("evaluation, checkpoints, statistics")
    cli.add_schedule_flags(ev, keep_checkpoints=2)
    ev.add_argument("--bootstrap-reps", type=int, default=stats.DEFAULT_REPS,
                    help="stratified-bootstrap replicates per confidence interval")
    ev.add_argument("--confidence", type=float, default=0.95, help="confidence level")
    ev.add_argument("--stat", choices=("iqm", "mean"), default="iqm", help="line of the plots")
    cli.add_config_flags(p, f"hyperparameters ({learner.config_class.__name__} fields, for every phase; "
                         "default: the preset's, or the --pretrained run's)", skip=_SCHEDULE_FIELDS,
                         learner=learner)
    return p


def anneal_steps_for(finetune_steps: int, fraction: float, explicit: int | None = None) -> int:
    """Updates over which the fine-tuning schedules run: ``explicit`` if given, else
    ``fraction`` of the fine-tuning steps (at least 1), at most the paper's 200k."""
    if explicit is not None:
        return int(explicit)
    return int(min(PAPER_ANNEAL_STEPS, max(1, round(fraction * finetune_steps))))


# ------------------------------------------------------------------------------ the plan

@dataclasses.dataclass
class Plan:
    """Everything the study runs, decided (and checked) before anything is trained."""

    out: Path
    seed_ids: tuple[int, ...]
    base_seed: int
    pretrain: rd.RunSpec | None  # None with --pretrained
    pretrained: str  # what fine-tuning starts from
    tasks: dict[str, dict[str, rd.RunSpec]]  # short name -> arm -> spec
    settings: dict[str, Any]
    learner: learners.Learner


def _pretrained_sizes(path: str, seed_ids: Sequence[int],
                      learner: learners.Learner) -> tuple[Path, Any, int, int, str]:
    """The checkpoint ``path`` names, its config, sizes and env (if recorded); RunError
    if it is a multi-seed checkpoint without one of ``seed_ids``, or holds another
    learner than ``learner``."""
    ckpt = rd.find_checkpoint(path)
    meta = sqljax.read_checkpoint_metadata(ckpt)
    counters = meta.get("metadata", {})
    have = list(rd.seed_learners(path)) or counters.get("seed_ids")
    if rd.seed_learners(path) or counters.get("format") in rd.RESUMABLE_FORMATS:
        missing = [s for s in seed_ids if s not in have]
        if missing:
            raise RunError(f"--pretrained {path} holds seeds {have}, not seed(s) "
                           f"{missing}; choose --seeds / --first-seed among them")
    try:
        cfg = learners.config_from_dict(meta["config"], meta.get("learner"))
        obs_dim, action_dim = int(meta["obs_dim"]), int(meta["action_dim"])
    except (KeyError, TypeError, ValueError) as e:
        raise RunError(f"--pretrained {ckpt}: unreadable config or sizes ({e})") from None
    saved = learners.of_config(cfg)
    if saved is not learner:
        raise RunError(f"--pretrained {ckpt} holds {saved.name} learners, not {learner.name}; pass "
                       f"--learner {saved.name}, or pretrained {learner.name} learners")
    return ckpt, cfg, obs_dim, action_dim, counters.get("env_id", "unknown")


def make_plan(args) -> Plan:
    learner = learners.get(getattr(args, "learner", None))
    schedules = has_schedules(learner)
    if not schedules:
        given = [cli.flag(name) for name in _SCHEDULE_FLAGS if getattr(args, name) is not None]
        if given:
            raise RunError(f"{', '.join(given)}: the fine-tuning schedules need a config with "
                           f"{', '.join(_SCHEDULE_FIELDS)}; {learner.name}'s "
                           f"{learner.config_class.__name__} has none (drop the flag(s))")
    cli.check_at_least(args, {
        **dict.fromkeys(("pretrain_steps", "finetune_steps", "seeds", "eval_episodes",
                         "keep_checkpoints", "bootstrap_reps", "devices"), 1),
        **dict.fromkeys(("eval_every", "checkpoint_every", "log_every", "anneal_steps",
                         "first_seed"), 0)})
    if schedules and args.noise_bank_size < 0:
        raise RunError(f"--noise-bank-size must be >= 0 (0: off), got {args.noise_bank_size}")
    if schedules and not 0 < args.anneal_fraction <= 1:
        raise RunError(f"--anneal-fraction must be in (0, 1], got {args.anneal_fraction}")
    if not 0 < args.confidence < 1:
        raise RunError(f"--confidence must be in (0, 1), got {args.confidence}")
    if not args.tasks:
        raise RunError("--tasks needs at least one task")
    out = Path(args.out)
    seed_ids = tuple(range(args.first_seed, args.first_seed + args.seeds))
    overrides = cli.config_overrides(args)

    # The learner's hyperparameters: the preset's, or the pretrained run's, then the flags.
    pretrain_id = resolve_env_id(PRETRAIN_ENV)
    no_schedules = dict(anneal_steps=0, final_reward_scale=None, noise_bank_size=0) if schedules else {}
    if args.pretrained:
        src, pre_cfg, obs_dim, action_dim, pretrain_id = _pretrained_sizes(args.pretrained, seed_ids, learner)
        for name in ("hidden_sizes", "n_q"):
            want = overrides.get(name, getattr(pre_cfg, name))
            if (tuple(want) if name == "hidden_sizes" else want) != getattr(pre_cfg, name):
                raise RunError(f"{cli.flag(name)}: fine-tuning keeps the pretrained network's "
                               f"{name} {getattr(pre_cfg, name)}")
        base = cli.make_config(pretrain_id, None, {**overrides, **no_schedules}, pre_cfg, learner)
        source = str(src)
    else:
        base = cli.make_config(pretrain_id, args.preset, overrides, learner=learner)
        info = env_info(pretrain_id)
        obs_dim, action_dim = info.obs_dim, info.action_dim
        source = f"{pretrain_id} ({args.preset} preset)"

    task_ids = []
    for name in args.tasks:
        env_id = resolve_env_id(name)
        info = env_info(env_id)
        if (info.obs_dim, info.action_dim) != (obs_dim, action_dim):
            raise RunError(f"the pretrained learner ({source}) has observation size {obs_dim} and "
                           f"action size {action_dim}, but {env_id} has observation size "
                           f"{info.obs_dim} and action size {info.action_dim}; transfer needs the "
                           "same spaces")
        if env_id not in task_ids:
            task_ids.append(env_id)

    anneal = anneal_steps_for(args.finetune_steps, args.anneal_fraction, args.anneal_steps) if schedules else 0
    final_scale = args.final_reward_scale if anneal > 0 else None
    bank = args.noise_bank_size if anneal > 0 else 0
    finetune_cfg = base
    if schedules:
        finetune = dict(anneal_steps=anneal, final_reward_scale=final_scale, noise_bank_size=bank)
        finetune_cfg = cli.make_config(pretrain_id, None, finetune, base)
    scratch_cfg = finetune_cfg if args.scratch_schedules else base

    common = dict(seed_ids=seed_ids, base_seed=args.seed, keep_checkpoints=args.keep_checkpoints,
                  progress=not args.no_progress, devices=args.devices)
    pretrain = None
    if args.pretrained:
        pretrained = str(args.pretrained)
    else:
        pretrained = str(out / "pretrain")
        pretrain = rd.RunSpec(env_id=pretrain_id, config=base, steps=args.pretrain_steps,
                                    out=out / "pretrain", preset=args.preset,
                                    label=f"pretrain {short_name(pretrain_id)}",
                                    **cli.schedule(args, args.pretrain_steps, False), **common)
    tasks: dict[str, dict[str, rd.RunSpec]] = {}
    for env_id in task_ids:
        name = short_name(env_id)
        sched = cli.schedule(args, args.finetune_steps, False)
        tasks[name] = {
            "finetune": rd.RunSpec(env_id=env_id, config=finetune_cfg, steps=args.finetune_steps,
                                         out=out / name / "finetune", label=f"{name} fine-tuned",
                                         init_from=pretrained, **sched, **common),
            "scratch": rd.RunSpec(env_id=env_id, config=scratch_cfg, steps=args.finetune_steps,
                                        out=out / name / "scratch", label=f"{name} from scratch",
                                        preset=None if args.pretrained else args.preset,
                                        **sched, **common),
        }
    settings = {
        "pretrain_env": pretrain_id, "pretrain_steps": None if args.pretrained else args.pretrain_steps,
        "pretrained": pretrained, "finetune_steps": args.finetune_steps, "seed_ids": list(seed_ids),
        "base_seed": args.seed, "tasks": list(tasks),
        "anneal_steps": anneal, "final_reward_scale": final_scale, "noise_bank_size": bank,
        "anneal_note": "schedules count updates, which start after learning_starts env steps "
                       f"({base.learning_starts}); the paper's span is {PAPER_ANNEAL_STEPS} steps",
        "scratch_schedules": bool(args.scratch_schedules),
        "config_pretrain": base.to_dict(), "config_finetune": finetune_cfg.to_dict(),
        "config_scratch": scratch_cfg.to_dict(),
    }
    return Plan(out=out, seed_ids=seed_ids, base_seed=args.seed, pretrain=pretrain,
                pretrained=pretrained, tasks=tasks, settings=settings, learner=learner)


# ------------------------------------------------------------------------------ running

def run_phase(spec: rd.RunSpec, log=print, reps: int = stats.DEFAULT_REPS,
              confidence: float = 0.95, stat: str = "iqm") -> str:
    """Train ``spec`` (or resume it, or skip it when its directory already holds the
    finished run), then write its summary.json and curves.png. Returns what it did."""
    out = Path(spec.out)
    if (out / rd.RUN_FILE).exists():
        run = rd.read_run(out)
        if (run["env_id"] != resolve_env_id(spec.env_id) or list(run["seed_ids"]) != list(spec.seed_ids)
                or int(run["base_seed"]) != spec.base_seed or rd.read_config(out) != spec.config):
            raise RunError(f"{out} holds another run (env, seeds or hyperparameters differ from this "
                           "study's); choose another --out, or remove it")
        saved = rd.checkpoint_dirs(out)  # (step, path), oldest first
        if not saved:  # stopped before its first checkpoint: the same run starts again
            ms.train(spec, log=log)
            done = "started again"
        elif saved[-1][0] >= spec.steps:
            done = "finished before"
        else:
            ms.train(spec, resume=True, log=log)
            done = "resumed"
    else:
        ms.train(spec, log=log)
        done = "trained"
    bench.write_summary(out, reps, confidence, stat)
    return done


def _per_seed_curve(summary: dict, mode: str) -> tuple[np.ndarray, np.ndarray]:
    curve = summary["curves"][mode]
    steps = np.asarray(curve.get("per_seed_step", []), np.int64)
    ids = [str(s) for s in summary["seed_ids"]]
    returns = np.asarray([curve["per_seed"][s] for s in ids], np.float64).reshape(len(ids), -1)
    return steps, returns


def _scores(summary: dict, mode: str) -> dict[str, Any] | None:
    """Per-seed final return and average over evaluations of one arm, with CIs."""
    steps, returns = _per_seed_curve(summary, mode)
    if not len(steps) or not np.all(np.isfinite(returns)):
        return None
    return {"final_step": int(steps[-1]), "eval_steps": [int(s) for s in steps],
            "final_per_seed": [float(x) for x in returns[:, -1]],
            "average_per_seed": [float(x) for x in returns.mean(axis=1)]}


def task_summary(task_dir: Path, reps: int, confidence: float) -> dict[str, Any]:
    """Fine-tuned vs scratch on one task, from the arms' summary.json files."""
    out: dict[str, Any] = {}
    sums = {}
    for arm in ARMS:
        path = task_dir / arm / SUMMARY_FILE
        if path.is_file():
            sums[arm] = json.loads(path.read_text())
    if not sums:
        return out
    out["env_id"] = next(iter(sums.values()))["env_id"]
    for arm, s in sums.items():
        entry: dict[str, Any] = {"run_dir": str(task_dir / arm), "label": s["label"],
                                 "steps": s["steps"], "n_seeds": s["n_seeds"]}
        for mode in MODES:
            sc = _scores(s, mode)
            if sc is None:
                continue
            sc["final"] = stats.interval_estimates(sc["final_per_seed"], ("mean", "iqm"), reps, confidence)
            sc["average"] = stats.interval_estimates(sc["average_per_seed"], ("mean", "iqm"), reps,
                                                     confidence)
            entry[mode] = sc
        out[arm] = entry
    if all(arm in out for arm in ARMS):
        comparison = {}
        for mode in MODES:
            ft, sc = out["finetune"].get(mode), out["scratch"].get(mode)
            if not ft or not sc:
                continue
            comparison[mode] = {}
            for what in ("final", "average"):
                d = stats.difference_ci(ft[f"{what}_per_seed"], sc[f"{what}_per_seed"], reps, confidence)
                d["verdict"] = stats.verdict(d, "fine-tuned", "scratch", where=True)
                comparison[mode][what] = d
        out["finetune_minus_scratch"] = comparison
    return out


def write_study(plan: Plan, reps: int, confidence: float, stat: str) -> dict[str, Any]:
    """summary.json and transfer.png of the study, from what its runs have written."""
    summary: dict[str, Any] = {
        "study": "skill transfer (Haarnoja et al. 2017, section 5.3): pretrained on "
                 f"{plan.settings['pretrain_env']}, fine-tuned on each task, against training the "
                 "task from scratch for the same env steps",
        "settings": plan.settings,
        "statistics": {
            "final": "each seed's mean evaluation return at the last evaluation",
            "average": "each seed's mean evaluation return averaged over all its evaluations "
                       "(normalised area under the learning curve: how fast it learns)",
            "mean_iqm": f"mean / interquartile mean over seeds, {confidence:.0%} stratified-"
                        f"bootstrap percentile CI, {reps} replicates (experiments/stats.py)",
            "finetune_minus_scratch": f"difference of the means over seeds, {confidence:.0%} "
                                      "percentile CI of independent bootstrap resamples of the two "
                                      "groups; share_positive: share of resamples above 0",
            "evaluation": _EVALUATION_WITH_SCHEDULES if has_schedules(plan.learner) else "; ".join(
                f"{mode}: {words}" for mode, words in plan.learner.eval_modes.items()),
        },
        "tasks": {},
    }
    pre = Path(plan.pretrained)
    if plan.pretrain is not None and (pre / SUMMARY_FILE).is_file():
        s = json.loads((pre / SUMMARY_FILE).read_text())
        summary["pretrain"] = {"run_dir": str(pre), "env_id": s["env_id"], "steps": s["steps"],
                               "final": s.get("final", {})}
    for name in plan.tasks:
        t = task_summary(plan.out / name, reps, confidence)
        if t:
            summary["tasks"][name] = t
    plan.out.mkdir(parents=True, exist_ok=True)
    (plan.out / SUMMARY_FILE).write_text(json.dumps(bench.json_safe(summary), indent=2) + "\n")
    plots.plot_transfer(plan.out, list(plan.tasks), len(plan.seed_ids), plan.settings,
                        plan.out / PLOT_FILE, stat)
    return summary


def _report(summary: dict[str, Any]) -> str:
    lines = []
    for name, t in summary["tasks"].items():
        lines.append(f"{name}:")
        for mode in MODES:
            for arm in ARMS:
                e = t.get(arm, {}).get(mode)
                if e:
                    lines.append(f"  {mode:13s} {arm:8s} final (step {e['final_step']}) mean "
                                 f"{stats.describe(e['final']['mean'])}, average over evaluations "
                                 f"{stats.describe(e['average']['mean'])}")
            d = t.get("finetune_minus_scratch", {}).get(mode)
            if d:
                lines.append(f"  {mode:13s} fine-tuned - scratch: final {stats.describe(d['final'])} "
                             f"({d['final']['verdict']}); average {stats.describe(d['average'])} "
                             f"({d['average']['verdict']})")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ main

def run_study(argv: Sequence[str] | None = None) -> None:
    """The study of the command line ``argv``: every phase not finished yet, then its
    summary; errors as exceptions (:func:`main` turns them into one line)."""
    args = build_parser(cli.chosen_learner(argv)).parse_args(argv)
    plan = make_plan(args)
    phases = ([("pretraining", plan.pretrain)] if plan.pretrain else []) + [
        (f"{name}: {arm}", spec) for name, arms in plan.tasks.items() for arm, spec in arms.items()]
    st = plan.settings
    print(f"transfer study {plan.out}: seeds {plan.seed_ids[0]}..{plan.seed_ids[-1]}, "
          f"{'pretrain ' + str(st['pretrain_steps']) + ' steps, ' if st['pretrain_steps'] else ''}"
          f"fine-tune/scratch {st['finetune_steps']} steps on {', '.join(plan.tasks)}; "
          f"fine-tuning {plots.schedule_words(st)}")
    for k, (what, spec) in enumerate(phases, 1):
        print(f"[{k}/{len(phases)}] {what}: {spec.env_id}, {spec.steps} steps -> {spec.out}")
        done = run_phase(spec, reps=args.bootstrap_reps, confidence=args.confidence, stat=args.stat)
        if done == "finished before":
            print(f"  {spec.out} was finished before; kept")
        if spec is not plan.pretrain and spec.init_from is None:  # a task's last arm
            write_study(plan, args.bootstrap_reps, args.confidence, args.stat)
    summary = write_study(plan, args.bootstrap_reps, args.confidence, args.stat)
    print(_report(summary))
    print(f"wrote {plan.out / SUMMARY_FILE} and {plan.out / PLOT_FILE}")


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run_main(lambda: run_study(argv), "interrupted; run the same command again to continue the study")


if __name__ == "__main__":
    sys.exit(main())
