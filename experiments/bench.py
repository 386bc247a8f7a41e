"""Multi-seed benchmark: N seeds trained in lockstep (one program, ``jax.vmap`` over
seeds, the seed axis sharded over all devices), then statistics across seeds.

    python -m experiments.bench --env HalfCheetah --seeds 8 --steps 1000000 --out runs/bench/hc
    python -m experiments.bench --env MultiGoal --seeds 8 --preset multigoal
    python -m experiments.bench --env AntHallway --seeds 4 --init-from runs/pretrain   # fine-tune
    python -m experiments.bench --resume runs/bench/hc            # continue after a stop
    python -m experiments.bench --compare runs/bench/hc-code runs/bench/hc-paper --out cmp.png
    python -m experiments.bench --summarize runs/bench/hc          # redo summary.json, curves.png

``--learner`` picks the algorithm (default sql; ddpg, whose ``modern`` preset is TD3);
every field of its config is a flag (``--reward-scale 30``, ``--hidden-sizes 256 256``), as
in ``experiments.train``; ``--preset`` picks the base (default: the task's, else "code").
Writes under ``--out`` (default ``runs/bench/<env>/<label>``): run.json, config.json,
seed{i}/metrics.csv and TensorBoard events, checkpoints/step_*/, summary.json (per evaluation step: mean and
IQM across seeds with 95 % stratified-bootstrap confidence intervals, for stochastic and
deterministic evaluation; each seed's final return) and curves.png.

Bad input ends with one line on stderr (``error: ...``) and exit status 2; a run in
which any seed diverges stops with exit status 1, keeping its last good checkpoint.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments import cli, stats
from sqljax import learners
from sqljax.envs import registry
from sqljax.loops import RunError
from sqljax.loops import multi_seed as ms
from sqljax.store import run_dir as rd
from sqljax.store.run_dir import CONFIG_FILE, RunSpec

SUMMARY_FILE = "summary.json"
CURVES_FILE = "curves.png"
MODES = ("stochastic", "deterministic")
_MODE_COLUMN = {"stochastic": "eval_return", "deterministic": "eval_return_det"}


def build_parser(learner: learners.Learner | None = None) -> argparse.ArgumentParser:
    learner = learner or learners.get(None)
    p = cli.Parser(prog="python -m experiments.bench",
                description="Train N seeds of a learner (default Soft Q-Learning; --learner ddpg "
                            "for DDPG and TD3) in lockstep (vmapped, sharded over devices) and "
                            "summarise them with IQM / mean and bootstrap CIs.",
                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    cli.add_learner_flag(p)
    run = cli.add_run_flags(p, keep_checkpoints=2, learner=learner)
    run.add_argument("--seeds", type=int, default=8, help="number of seeds N (a multiple of the "
                     "device count)")
    run.add_argument("--first-seed", type=int, default=0, help="seed indices are first-seed .. "
                     "first-seed+N-1 (to extend a study with more seeds)")
    run.add_argument("--seed", type=int, default=0, help="base seed: seed i's key is "
                     "fold_in(key(base), i)")
    run.add_argument("--label", help="name of this configuration in summaries and plots "
                     "(default: the preset, with any overrides)")
    st = p.add_argument_group("statistics and plots")
    st.add_argument("--bootstrap-reps", type=int, default=stats.DEFAULT_REPS,
                    help="stratified-bootstrap replicates per confidence interval")
    st.add_argument("--confidence", type=float, default=0.95, help="confidence level")
    st.add_argument("--stat", choices=("iqm", "mean"), default="iqm", help="line of the plots")
    st.add_argument("--compare", nargs="+", metavar="RUN_DIR", help="overlay finished runs "
                    "(their summary.json) on one plot, written to --out (default compare.png)")
    st.add_argument("--mode", choices=MODES, default="stochastic", help="evaluation mode "
                    "plotted by --compare")
    st.add_argument("--summarize", metavar="RUN_DIR", help="recompute summary.json and "
                    "curves.png of a run from its metrics")
    cli.add_config_flags(p, f"hyperparameters ({learner.config_class.__name__} fields; default: "
                         "the preset's)", learner=learner)
    return p


def _default_label(preset: str, overrides: dict[str, Any]) -> str:
    if not overrides:
        return preset
    parts = [f"{k}={'x'.join(map(str, v)) if isinstance(v, (list, tuple)) else v}"
             for k, v in sorted(overrides.items())]
    return f"{preset} ({', '.join(parts)})"


def spec_from_args(args) -> RunSpec:
    if not args.env:
        raise RunError("--env is required (or --resume / --compare / --summarize)")
    learner = learners.get(args.learner)
    if args.preset is None and not args.init_from:
        args.preset = learner.task_preset(cli.task_env_id(args.env))
    label = args.label or _default_label(cli.run_name(learner, args.preset or "finetune"),
                                         cli.config_overrides(args))

    def default_out(env_id, preset, overrides):
        return Path("runs") / "bench" / registry.short_name(env_id) / _slug(label)

    seed_ids = tuple(range(args.first_seed, args.first_seed + args.seeds))
    return cli.new_run_spec(args, seed_ids, default_out, base_seed=args.seed, label=label)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=" else "_" for c in text).strip("_") or "run"


# ------------------------------------------------------------------------------ summary

def eval_table(run_dir: Path, seed_ids: Sequence[int], mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Evaluation steps (S,) and per-seed returns (N, S) of one mode, from the seeds'
    metrics.csv; only steps evaluated for every seed."""
    per_seed = []
    for sid in seed_ids:
        rows = rd.read_metrics(run_dir, sid)
        per_seed.append({int(r["step"]): float(r[_MODE_COLUMN[mode]]) for r in rows
                         if r.get(_MODE_COLUMN[mode]) not in (None, "")})
    common = sorted(set.intersection(*(set(d) for d in per_seed))) if per_seed else []
    return (np.asarray(common, np.int64),
            np.asarray([[d[s] for s in common] for d in per_seed], np.float64).reshape(len(per_seed), -1))


def summarize(run_dir: str | Path, reps: int = stats.DEFAULT_REPS,
              confidence: float = 0.95) -> dict[str, Any]:
    """summary.json of a run directory, from its seeds' metrics.csv."""
    run_dir = Path(run_dir)
    run = rd.read_run(run_dir)
    seed_ids = list(run["seed_ids"])
    out: dict[str, Any] = {
        "label": run.get("label") or run_dir.name, "env_id": run["env_id"],
        "n_seeds": len(seed_ids), "seed_ids": seed_ids, "base_seed": run["base_seed"],
        "steps": run["steps"], "preset": run.get("preset"),
        "config": json.loads((run_dir / CONFIG_FILE).read_text()),
        "statistics": {
            "mean": "mean over seeds",
            "iqm": "interquartile mean over seeds: scipy.stats.trim_mean(x, 0.25) (rliable's IQM)",
            "ci": f"{confidence:.0%} stratified-bootstrap percentile interval over seeds "
                  f"(rliable's convention), {reps} replicates",
            "confidence": confidence, "bootstrap_reps": reps,
            "evaluation": "mean return of each seed's evaluation episodes; stochastic: fresh xi "
                          "each step (the authors' protocol); deterministic: xi = 0",
        },
        "curves": {}, "final": {},
    }
    for mode in MODES:
        steps, returns = eval_table(run_dir, seed_ids, mode)
        curve = stats.summarize_curve(steps, returns, ("mean", "iqm"), reps, confidence)
        curve["per_seed"] = {str(s): [float(x) for x in returns[j]] for j, s in enumerate(seed_ids)}
        curve["per_seed_step"] = [int(s) for s in steps]
        out["curves"][mode] = curve
        if len(steps):
            last = returns[:, -1]
            final = {"step": int(steps[-1]),
                     "per_seed": {str(s): float(last[j]) for j, s in enumerate(seed_ids)}}
            if np.all(np.isfinite(last)):
                final.update(stats.interval_estimates(last, ("mean", "iqm"), reps, confidence))
            out["final"][mode] = final
    goals = _last_values(run_dir, seed_ids, "eval_goals")
    if goals:
        out["final"]["goals_reached"] = goals
    rate = throughput(run_dir, seed_ids)
    if rate:
        out["throughput"] = rate
    return out


def throughput(run_dir: Path, seed_ids: Sequence[int]) -> dict[str, Any] | None:
    """Training speed of a run from its metrics (None before the first log row)."""
    rates = [float(r["steps_per_sec"]) for r in rd.read_metrics(run_dir, seed_ids[0])
             if r.get("steps_per_sec") not in (None, "")]
    if not rates:
        return None
    per_seed = float(np.median(rates))
    return {"env_steps_per_sec_per_seed": per_seed,
            "total_env_steps_per_sec": per_seed * len(seed_ids),
            "note": "median over log intervals, evaluation excluded, "
                    "compilation included in the first ones"}


def _last_values(run_dir: Path, seed_ids, column: str) -> dict[str, float]:
    """Last logged value of ``column`` per seed; empty if a seed never logged it."""
    found: dict[str, float] = {}
    for sid in seed_ids:
        rows = [r for r in rd.read_metrics(run_dir, sid) if r.get(column) not in (None, "")]
        if not rows:
            return {}
        found[str(sid)] = float(rows[-1][column])
    return found


def write_summary(run_dir: str | Path, reps: int = stats.DEFAULT_REPS,
                  confidence: float = 0.95, stat: str = "iqm") -> dict[str, Any]:
    """Write summary.json and curves.png of a run; returns the summary."""
    from experiments import plots

    run_dir = Path(run_dir)
    summary = summarize(run_dir, reps, confidence)
    (run_dir / SUMMARY_FILE).write_text(json.dumps(json_safe(summary), indent=2) + "\n")
    plots.plot_run(run_dir, run_dir / CURVES_FILE, stat=stat)
    return summary


def json_safe(x):
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _report(summary: dict[str, Any]) -> str:
    lines = [f"{summary['label']} on {summary['env_id']}, {summary['n_seeds']} seeds:"]
    for mode in MODES:
        f = summary["final"].get(mode)
        if f and "iqm" in f:
            lines.append(f"  {mode:13s} at step {f['step']}: IQM {stats.describe(f['iqm'])}, "
                         f"mean {stats.describe(f['mean'])}")
    if "goals_reached" in summary["final"]:
        lines.append(f"  goals reached per seed: {summary['final']['goals_reached']}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ main

def main(argv: Sequence[str] | None = None) -> int:
    import jax

    try:
        parser = build_parser(cli.chosen_learner(argv))
    except cli.BadInput as e:
        return cli.report_error(e, "interrupted")
    lead = jax.process_index() == 0
    try:
        args = parser.parse_args(argv)
        if args.compare:
            from experiments import plots

            out = Path(args.out or "compare.png")
            plots.plot_compare(args.compare, out, mode=args.mode, stat=args.stat)
            print(f"wrote {out}")
            return 0
        if args.summarize:
            summary = write_summary(args.summarize, args.bootstrap_reps, args.confidence, args.stat)
            print(_report(summary))
            return 0
        cli.check_run_flags(args)
        cli.check_at_least(args, {"seeds": 1, "bootstrap_reps": 1, "first_seed": 0})
        if not 0 < args.confidence < 1:
            raise RunError(f"--confidence must be in (0, 1), got {args.confidence}")
        resume = bool(args.resume)
        spec = cli.spec_from_resume(args) if resume else spec_from_args(args)
        if lead and not resume:
            print(f"bench {spec.out}: {spec.env_id}, seeds {spec.seed_ids[0]}..{spec.seed_ids[-1]}, "
                  f"{spec.steps} steps each, {spec.label}, on {len(jax.devices()) if spec.devices is None else spec.devices} "
                  f"{jax.devices()[0].platform} device(s)")
        ms.train(spec, resume=resume, log=print if lead else (lambda _: None))
        if lead:
            summary = write_summary(spec.out, args.bootstrap_reps, args.confidence, args.stat)
            print(_report(summary))
            print(f"outputs in {spec.out}")
    except cli.HANDLED_ERRORS as e:
        return cli.report_error(e, "interrupted; continue with --resume from the last checkpoint")
    return 0


if __name__ == "__main__":
    sys.exit(main())
