"""Throughput of lockstep multi-seed training against running the seeds one after
another: total env steps per second for N = 1, 4, 8 seeds, measured after
``learning_starts`` (so every step runs an update) in one process.

    python -m experiments.perf.bench_seeds                       # HalfCheetah-v5 and MultiGoal
    python -m experiments.perf.bench_seeds --envs Pendulum --seeds 1 2 --measure-steps 300

Running N seeds one after another processes env steps at the rate of one seed, r_1;
lockstep training processes N * r_N (r_N: the rate each seed advances at). The speed-up
over sequential runs is N * r_N / r_1. Each configuration is timed over
``--measure-steps`` env steps per seed, after the warm-up (``learning_starts`` plus one
log interval, which holds the update's compilation); evaluation and checkpoints are
off. Writes a JSON table (default runs/bench/seeds.json) and prints it as markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import sqljax
from experiments import machine
from experiments.cli import make_config
from sqljax.envs import registry
from sqljax.envs.gym_adapter import resolve_env_id, short_name
from sqljax.loops import multi_seed as ms
from sqljax.store import run_dir as rd


def config_for(env_id: str, preset: str | None) -> sqljax.SQLConfig:
    """The env's default configuration (as ``experiments.bench`` picks it)."""
    return make_config(env_id, preset, {})


def measure(env_id: str, cfg: sqljax.SQLConfig, n_seeds: int, measure_steps: int,
            interval: int, out: Path) -> dict:
    """Train ``n_seeds`` seeds for learning_starts + interval + measure_steps steps; time
    the last ``measure_steps`` (whole log intervals)."""
    warmup = cfg.learning_starts + interval
    warmup += (-warmup) % interval  # a whole number of intervals
    steps = warmup + measure_steps
    spec = rd.RunSpec(env_id=env_id, config=cfg, seed_ids=tuple(range(n_seeds)), steps=steps,
                            out=out, eval_every=0, checkpoint_every=0, log_every=interval,
                            progress=False)
    t0 = time.perf_counter()
    result = ms.train(spec, log=lambda _: None)
    wall = time.perf_counter() - t0
    rates = result["steps_per_sec"]  # per log interval, per seed
    skip = warmup // interval
    timed = rates[skip:]
    seconds = sum(interval / r for r in timed)
    per_seed = len(timed) * interval / seconds
    return {"n_seeds": n_seeds, "per_seed_steps_per_sec": per_seed,
            "total_steps_per_sec": per_seed * n_seeds, "measured_steps_per_seed": len(timed) * interval,
            "measured_seconds": seconds, "run_steps_per_seed": steps, "wall_seconds": wall,
            "updates_per_seed": result["updates"][0]}


def markdown(table: dict) -> str:
    lines = ["| env | seeds | env steps/s per seed | total env steps/s | speed-up vs sequential |",
             "|---|---:|---:|---:|---:|"]
    for env, rows in table["results"].items():
        for r in rows:
            lines.append(f"| {env} | {r['n_seeds']} | {r['per_seed_steps_per_sec']:.0f} | "
                         f"{r['total_steps_per_sec']:.0f} | {r['speedup_vs_sequential']:.2f}x |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.perf.bench_seeds",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--envs", nargs="+", default=["HalfCheetah", "MultiGoal"])
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 4, 8])
    p.add_argument("--preset", help="configuration preset (default: the task's)")
    p.add_argument("--measure-steps", type=int, default=None,
                   help="timed env steps per seed (default 600 for gymnasium envs, 1000 for "
                        "JAX-native ones)")
    p.add_argument("--out", default="runs/bench/seeds.json")
    args = p.parse_args(argv)
    if 1 not in args.seeds:
        args.seeds = [1] + list(args.seeds)  # the sequential baseline
    info = machine.device_info()
    table = {
        "what": "env steps per second after learning_starts (every step updates), evaluation "
                "and checkpoints off; sequential = N runs of one seed one after another, whose "
                "total rate is the 1-seed rate",
        "machine": {"platform": info["platform"], "devices": info["device_count"],
                    "device_kind": info["device_kind"], "cpus": info["cpus"],
                    "load_average_at_start": list(os.getloadavg()),
                    "python": info["python"], "jax": info["jax"]},
        "results": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.envs:
            env_id = resolve_env_id(name)
            cfg = config_for(env_id, args.preset)
            native = registry.is_jax_native(env_id)
            steps = args.measure_steps or (1000 if native else 600)
            interval = 500 if native else 100
            steps += (-steps) % interval
            rows = []
            for n in sorted(set(args.seeds)):
                r = measure(env_id, cfg, n, steps, interval, Path(tmp) / f"{short_name(env_id)}-{n}")
                rows.append(r)
                print(f"{env_id}: {n} seeds: {r['total_steps_per_sec']:.0f} env steps/s in total "
                      f"({r['per_seed_steps_per_sec']:.0f} per seed)", flush=True)
            base = next(r for r in rows if r["n_seeds"] == 1)["per_seed_steps_per_sec"]
            for r in rows:
                r["sequential_steps_per_sec"] = base
                r["speedup_vs_sequential"] = r["total_steps_per_sec"] / base
            table["results"][env_id] = rows
            table.setdefault("configs", {})[env_id] = cfg.to_dict()
    table["machine"]["load_average_at_end"] = list(os.getloadavg())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(table, indent=2) + "\n")
    print(markdown(table))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
