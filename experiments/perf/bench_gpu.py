"""How fast sqljax runs on an accelerator: matmul rate, the update vmapped over seeds,
and the compiled training loop, in one time-boxed run.

    python -m experiments.perf.bench_gpu [--tiny] [--seeds 1 16 64 256]
                                    [--time-budget 420] [--out runs/bench/gpu.json]

On a GPU machine with a CUDA jax (and flax, optax, chex, orbax) but no package index:
first, on a machine with one, ``make gpu-wheels`` puts into ``.whl/`` the wheels that
sqljax needs beyond that stack (flashbax, gymnasium and their requirements; the MuJoCo
bindings for later). Carry ``.whl/`` with the working tree and there run
``make bench-gpu``: it installs the wheels into ``/tmp/site`` with pip (no index, no
dependencies) and runs this module with the machine's ``python3``; ``ARGS="..."`` passes
flags. To check the whole path on a CPU (two to three minutes on two cores):
``JAX_PLATFORMS=cpu make bench-gpu GPU_PY=.venv/bin/python GPU_INSTALL=0 ARGS=--tiny``.

Figures, by section:

1. **Device** (``experiments.machine.device_info``): ``jax.devices()``, jax, jaxlib and
   CUDA plugin versions, the platform, the CPU model and cores, the default matmul
   precision, the device's memory, ``nvidia-smi``'s summary.
2. **Matmul**: an N x N by N x N product (N = 8192; 512 with ``--tiny``), median of 10
   calls after warm-up, as ``TFLOP/s`` = 2 N^3 / seconds / 1e12, in float32 at the
   default precision (``float32_default``: what ``sqljax.update`` runs with; XLA may use
   TF32 on NVIDIA GPUs), in float32 at ``highest`` precision (true float32) and in
   bfloat16.
3. **Update**: ``jax.jit(jax.vmap(sqljax.update))`` over S seeds (one learner and one
   random batch per seed) at HalfCheetah size (obs 17, act 6) and Ant size (obs 105,
   act 8), preset ``code``, then ``modern``. For each S:

   * ``ms/call``: median wall time of one call (one update of each of the S seeds);
   * ``updates/s``: S / that time, all seeds together;
   * ``MFLOP/update``: XLA's FLOP count of the call (``compiled.cost_analysis()``) / S;
   * ``TFLOP/s``: FLOPs of the call / its time; ``of f32 matmul``: that rate over the
     ``float32_default`` matmul rate;
   * ``scan ms/update``: the call's work done K times (K = 100; 10 with ``--tiny``) in
     one jitted ``lax.scan``, wall time / K; ``scan updates/s`` = S K / wall time;
     ``dispatch ms`` = ``ms/call`` - ``scan ms/update``: what each separate call costs
     beyond its work (launch, host round trip), saved by taking updates in a scan;
   * ``compile s``: compilation of both programs.

4. **Training loop** (:func:`experiments.perf.loop_speed.measure_loop`): ``scan_loop`` on
   each ``--loop-envs`` env (default ``mjx:HalfCheetah`` and ``mjx:Ant``, gymnasium's
   v5 tasks stepped by MJX, with the ``code`` preset; ``MultiGoal`` takes the
   ``multigoal`` preset), ``jax.vmap``-ed over S seeds, every env at one S before the
   next S: a warm-up chunk (which holds the
   ``learning_starts`` steps without updates, capped at half a chunk), then a timed
   chunk of C env steps per seed (C = 2000; 200 with ``--tiny``), each step taking one
   update. ``env steps/s`` = S C / seconds of the timed chunk (all seeds together);
   ``per seed`` = C / seconds; ``updates/seed (timed)`` checks that every timed step
   updated. The replay capacity is the run's own length, 2 C transitions per seed, not
   the preset's 1e6, so that 256 seeds fit in memory (sampling is uniform over the
   filled part, at the same cost at any capacity). At the end, ``--loop-configs``
   (default ``code``) on the multi-goal task.
5. **Training run** (:func:`experiments.perf.loop_speed.measure_training`): the training
   driver itself on ``--train-env`` (default ``mjx:HalfCheetah``), 16 seeds (2 with
   ``--tiny``), ``code`` preset, for as many env steps as its section holds at the rate
   measured in 4 (a multiple of 10k, at most 1M), five evaluations of 5 episodes per
   mode and seed; the returns of the last one. Its run directory is ``gpu_train/``
   beside ``--out``.

Time: ``--time-budget`` seconds from the start of the process, compilation included.
The run goes: device, matmul, update ``code``, loops, training run, update ``modern``,
loop ``code``, each section ending by a set share of the budget. An item (one S of one
size and preset) starts only if the previous item of its kind, 25% longer, fits in what
is left of its section; the items skipped are tried again at the end if time remains,
and the names of those still skipped are recorded. A watchdog stops the process (exit
status 3) at the end of the budget, since a compilation cannot be interrupted. An item
that fails (e.g. out of memory) is recorded under ``errors`` and the run goes on.

Writes ``--out`` (default ``runs/bench/gpu.json``; ``complete`` is false until the end)
and the tables as ``gpu.md`` beside it after every item, so a run cut short keeps what it
measured, and copies both into ``$OUT`` when that variable is set. Prints the tables at
the end.
"""

from __future__ import annotations

# First: the time budget counts from its import, imports and compilation included.
from experiments.perf.budget import Clock, Item, Report, Runner, log, start_watchdog

# isort: split
import argparse
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import sqljax
from experiments.machine import device_info
from experiments.perf.bench_update import SIZES, flops_of, median_seconds, random_batch
from experiments.perf.loop_speed import measure_loop, measure_training, training_steps

#: Cumulative shares of the time budget at which each section must end. The last one
#: leaves room for an item that runs longer than estimated: at the full budget a
#: watchdog stops the run (what was measured is saved already).
SECTION_ENDS = {"matmul": 0.10, "update": 0.35, "loop": 0.58, "train": 0.82,
                "update_extra": 0.87, "loop_extra": 0.91, "retry": 0.95}


class Sizes:
    """Problem sizes of a full run (for a GPU) or of a ``--tiny`` one (a CPU check)."""

    def __init__(self, tiny: bool):
        self.matmul_n = 512 if tiny else 8192
        self.matmul_reps = 10
        self.scan_updates = 10 if tiny else 100
        self.loop_chunk_steps = 200 if tiny else 2000
        self.default_seeds = [1, 2] if tiny else [1, 16, 64, 256]
        self.train_seeds = 2 if tiny else 16
        self.train_steps = (200, 2_000) if tiny else (10_000, 1_000_000)  # least, most
        self.train_eval_episodes = 1 if tiny else 5
        self.max_calls = 10 if tiny else 50  # timed calls per update measurement, at most
        self.timing_s = 0.3 if tiny else 2.0  # seconds of timed calls per measurement, about


def describe(kind: str, r: dict) -> str:
    """One log line's worth of a measurement."""
    if kind == "matmul":
        return f"{r['n']}^3 in {r['ms']:.3g} ms, {r['tflops_per_s']:.3g} TFLOP/s"
    if kind == "update":
        return (f"{r['ms_per_call']:.3g} ms/call, {r['updates_per_s']:.4g} updates/s, "
                f"{r['tflops_per_s']:.3g} TFLOP/s; scan of {r['scan_updates_per_call']}: "
                f"{r['scan_ms_per_update']:.3g} ms/update, {r['scan_updates_per_s']:.4g} "
                f"updates/s (compile {r['compile_s']:.1f} + {r['scan_compile_s']:.1f} s)")
    if kind == "train":
        return (f"{r['steps_per_seed']} steps x {r['seeds']} seeds in {r['wall_s_run']:.0f} s, "
                f"{r['env_steps_per_s']:.4g} env steps/s; last evaluation (mean over seeds): "
                f"stochastic {_num(r['final_stochastic_mean'], '.1f')}, deterministic "
                f"{_num(r['final_deterministic_mean'], '.1f')}")
    return (f"{r['env_steps_per_s']:.4g} env steps/s ({r['env_steps_per_s_per_seed']:.4g} "
            f"per seed), compile {r['compile_s']:.1f} s")


# --------------------------------------------------------------------------- 2. matmul

MATMUL_KINDS = {
    # name: (dtype, precision)
    "float32_default": (jnp.float32, None),
    "float32_highest": (jnp.float32, jax.lax.Precision.HIGHEST),
    "bfloat16": (jnp.bfloat16, None),
}


def matmul_tflops(name: str, n: int, reps: int, dtype, precision) -> dict:
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32).astype(dtype)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32).astype(dtype)
    product = jax.jit(partial(jnp.matmul, precision=precision))
    seconds = median_seconds(product, (a, b), reps, warmup=3)
    return {"name": name, "dtype": jnp.dtype(dtype).name, "precision": str(precision),
            "n": n, "ms": seconds * 1e3, "tflops_per_s": 2 * n**3 / seconds / 1e12}


# --------------------------------------------------------------------------- 3. update

def flops_or_nan(compiled) -> float:
    """XLA's FLOP count of a compiled call; NaN where the backend gives none."""
    try:
        return flops_of(compiled)
    except Exception:  # noqa: BLE001  (cost_analysis differs between jax versions)
        return float("nan")


def stacked_learners(cfg: sqljax.SQLConfig, n_seeds: int, obs_dim: int, action_dim: int):
    """S learners and S random batches, stacked on a leading seed axis."""
    keys = jax.random.split(jax.random.key(0), n_seeds)
    batch_keys = jax.random.split(jax.random.key(1), n_seeds)
    states = jax.vmap(lambda k: sqljax.init(k, cfg, obs_dim, action_dim))(keys)
    batches = jax.vmap(lambda k: random_batch(k, cfg.batch_size, obs_dim, action_dim))(batch_keys)
    return states, batches


def repeated_update(n_updates: int):
    """state, batch -> (state after n_updates updates on batch, their metrics), one scan."""
    def run(state, batch):
        def one(s, _):
            return sqljax.update(s, batch)
        return jax.lax.scan(one, state, None, length=n_updates)
    return run


def timed_calls(fn, args, sizes: Sizes, most: int, least: int) -> float:
    """Median seconds per call over ``least`` to ``most`` calls, as many as fit in about
    ``sizes.timing_s``, after two untimed calls (the first one allocates memory)."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    probe = time.perf_counter() - t0
    n = int(np.clip(sizes.timing_s / max(probe, 1e-6), least, most))
    return median_seconds(fn, args, n, warmup=1)


def measure_update(preset: str, size: str, n_seeds: int, sizes: Sizes,
                   matmul_rate: float | None) -> dict:
    cfg = sqljax.SQLConfig.preset(preset)
    obs_dim, action_dim = SIZES[size]
    states, batches = stacked_learners(cfg, n_seeds, obs_dim, action_dim)

    t0 = time.perf_counter()
    per_call = jax.jit(jax.vmap(sqljax.update)).lower(states, batches).compile()
    compile_s = time.perf_counter() - t0
    flops_per_call = flops_or_nan(per_call)
    call_s = timed_calls(per_call, (states, batches), sizes, sizes.max_calls, 5)
    del per_call

    k = sizes.scan_updates
    t0 = time.perf_counter()
    scanned = jax.jit(jax.vmap(repeated_update(k))).lower(states, batches).compile()
    scan_compile_s = time.perf_counter() - t0
    scan_call_s = timed_calls(scanned, (states, batches), sizes, 10, 3)
    del scanned, states, batches

    tflops = flops_per_call / call_s / 1e12
    scan_update_s = scan_call_s / k
    return {
        "preset": preset, "size": size, "obs_dim": obs_dim, "action_dim": action_dim,
        "seeds": n_seeds, "batch_size": cfg.batch_size,
        "ms_per_call": call_s * 1e3,
        "updates_per_s": n_seeds / call_s,
        "flops_per_call": flops_per_call,
        "flops_per_update": flops_per_call / n_seeds,
        "tflops_per_s": tflops,
        "fraction_of_float32_matmul": tflops / matmul_rate if matmul_rate else None,
        "compile_s": compile_s,
        "scan_updates_per_call": k,
        "scan_ms_per_call": scan_call_s * 1e3,
        "scan_ms_per_update": scan_update_s * 1e3,
        "scan_updates_per_s": n_seeds / scan_update_s,
        "scan_tflops_per_s": flops_per_call / scan_update_s / 1e12,
        "scan_compile_s": scan_compile_s,
        "dispatch_ms_per_call": (call_s - scan_update_s) * 1e3,
    }


# --------------------------------------------------------------------------- tables

def _num(x, fmt: str = ".3g") -> str:
    return "-" if x is None or (isinstance(x, float) and not np.isfinite(x)) else format(x, fmt)


def markdown(data: dict) -> str:
    lines = []
    d = data.get("device") or {}
    if d:
        lines += [f"device: {d.get('device_kind')} x{d.get('device_count')} ({d.get('platform')}), "
                  f"jax {d.get('jax')}, jaxlib {d.get('jaxlib')}", ""]
    if data.get("matmul"):
        lines += ["| matmul | N | ms | TFLOP/s |", "|---|---:|---:|---:|"]
        for name, r in data["matmul"].items():
            lines.append(f"| {name} | {r['n']} | {_num(r['ms'])} | {_num(r['tflops_per_s'])} |")
        lines.append("")
    if data.get("update"):
        lines += ["| preset | size | seeds | ms/call | updates/s | MFLOP/update | TFLOP/s | "
                  "of f32 matmul | scan ms/update | scan updates/s | dispatch ms | compile s |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        settings = data["settings"]
        order = lambda r: (settings["presets"].index(r["preset"]), settings["sizes"].index(r["size"]),
                           r["seeds"])
        for r in sorted(data["update"], key=order):
            lines.append(
                f"| {r['preset']} | {r['size']} | {r['seeds']} | {_num(r['ms_per_call'])} | "
                f"{_num(r['updates_per_s'], '.4g')} | {_num(r['flops_per_update'] / 1e6, '.4g')} | "
                f"{_num(r['tflops_per_s'])} | {_num(r['fraction_of_float32_matmul'])} | "
                f"{_num(r['scan_ms_per_update'])} | {_num(r['scan_updates_per_s'], '.4g')} | "
                f"{_num(r['dispatch_ms_per_call'])} | "
                f"{_num(r['compile_s'] + r['scan_compile_s'], '.1f')} |")
        lines.append("")
    if data.get("loop"):
        lines += ["| env | loop config | seeds | env steps/s | per seed | ms/env step | "
                  "updates/seed (timed) | compile s |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        for r in data["loop"]:
            lines.append(
                f"| {r.get('env', 'MultiGoal')} | {r['config']} | {r['seeds']} | "
                f"{_num(r['env_steps_per_s'], '.4g')} | "
                f"{_num(r['env_steps_per_s_per_seed'], '.4g')} | {_num(r['ms_per_env_step'])} | "
                f"{r['updates_per_seed_in_timed_chunk']:.0f} | {_num(r['compile_s'], '.1f')} |")
        lines.append("")
    if data.get("train"):
        lines += ["| training run | seeds | steps/seed | wall s | env steps/s | last eval, "
                  "stochastic | deterministic |", "|---|---:|---:|---:|---:|---:|---:|"]
        for r in data["train"]:
            lines.append(f"| {r['env']} | {r['seeds']} | {r['steps_per_seed']} | "
                         f"{_num(r['wall_s_run'], '.0f')} | {_num(r['env_steps_per_s'], '.4g')} | "
                         f"{_num(r['final_stochastic_mean'], '.1f')} | "
                         f"{_num(r['final_deterministic_mean'], '.1f')} |")
        lines.append("")
    if data.get("skipped"):
        lines.append("skipped (time budget): " + ", ".join(data["skipped"]))
    if data.get("errors"):
        lines.append("errors: " + "; ".join(f"{e['item']}: {e['error'][:200]}" for e in data["errors"]))
    lines.append(f"complete: {data.get('complete')}, wall {_num(data.get('wall_seconds'), '.0f')} s")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main

def parse_args(argv: Sequence[str] | None):
    p = argparse.ArgumentParser(prog="python -m experiments.perf.bench_gpu",
                                description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiny", action="store_true",
                   help="small sizes and seeds 1 2: a check of the whole run on a CPU")
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="seed counts S (default 1 16 64 256; 1 2 with --tiny)")
    p.add_argument("--sizes", nargs="+", default=["HalfCheetah", "Ant"], choices=sorted(SIZES))
    p.add_argument("--presets", nargs="+", default=["code", "modern"], choices=sorted(sqljax.PRESETS),
                   help="update presets; the first is timed before the loop, the others after")
    p.add_argument("--loop-envs", nargs="+", default=["mjx:HalfCheetah", "mjx:Ant"],
                   help="JAX-native envs of the loop section (MultiGoal with its own preset, "
                   "others with the code preset)")
    p.add_argument("--loop-configs", nargs="+", default=["code"], choices=["code", "modern"],
                   help="further learners timed on MultiGoal at the end")
    p.add_argument("--train-env", default="mjx:HalfCheetah",
                   help="env of the training run (16 seeds, as many steps as fit; 'none': skip)")
    p.add_argument("--time-budget", type=float, default=420.0,
                   help="seconds for the whole run, compilation included (default 420)")
    p.add_argument("--out", type=Path, default=Path("runs/bench/gpu.json"))
    args = p.parse_args(argv)
    if args.seeds is not None and min(args.seeds) < 1:
        p.error("--seeds must be at least 1")
    if args.time_budget <= 0:
        p.error("--time-budget must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    sizes = Sizes(args.tiny)
    seeds = sorted(set(args.seeds or sizes.default_seeds))
    clock = Clock(args.time_budget, SECTION_ENDS)
    report = Report(args.out, {
        "tiny": args.tiny, "seeds": seeds, "sizes": args.sizes, "presets": args.presets,
        "loop_configs": args.loop_configs, "loop_envs": args.loop_envs,
        "train_env": args.train_env, "train_seeds": sizes.train_seeds,
        "time_budget_s": args.time_budget,
        "matmul_n": sizes.matmul_n, "scan_updates_per_call": sizes.scan_updates,
        "loop_chunk_steps": sizes.loop_chunk_steps,
        "loop_replay": "capacity per seed = the loop run's 2 chunks of env steps, not replay_size",
    }, {"device": {}, "matmul": {}, "update": [], "loop": [], "train": []}, markdown, "gpu")
    start_watchdog(report, clock)

    report.data["device"] = device_info()
    report.save()
    d = report.data["device"]
    log(f"{d['device_kind']} x{d['device_count']} ({d['platform']}), jax {d['jax']}, "
        f"jaxlib {d['jaxlib']}, python {d['python']}; CPU {d['cpu']} x{d['cpus']}")
    if d["platform"] != "gpu" and not args.tiny:
        log(f"warning: no GPU in use (jax runs on {d['platform']}); the figures are that device's")

    runner = Runner(report, clock, describe)
    runner.run("matmul", [
        Item(f"matmul {name}", "matmul",
             partial(matmul_tflops, name, sizes.matmul_n, sizes.matmul_reps, dtype, precision))
        for name, (dtype, precision) in MATMUL_KINDS.items()])
    matmul_rate = report.data["matmul"].get("float32_default", {}).get("tflops_per_s")

    def update_items(presets: list[str]) -> list[Item]:
        return [Item(f"update {preset} {size} S={n_seeds}", "update",
                     partial(measure_update, preset, size, n_seeds, sizes, matmul_rate))
                for preset in presets for size in args.sizes for n_seeds in seeds]

    def loop_items(pairs: list[tuple[str, str]]) -> list[Item]:
        return [Item(f"loop {env} {name} S={n_seeds}", "loop",
                     partial(measure_loop, name, env, n_seeds, sizes.loop_chunk_steps))
                for n_seeds in seeds for name, env in pairs]  # every env at S before the next S

    def train_run() -> dict:
        """As many steps as the train section holds, at the loop's measured rate."""
        rows = [r for r in report.data["loop"] if r["env"] == args.train_env]
        near = min(rows, key=lambda r: abs(r["seeds"] - sizes.train_seeds), default=None)
        rate = near["env_steps_per_s"] / sizes.train_seeds if near else 100.0
        steps = training_steps(rate, clock.left("train"), *sizes.train_steps)
        log(f"training {args.train_env}: {sizes.train_seeds} seeds x {steps} steps "
            f"(about {rate:.0f} steps/s per seed measured)")
        return measure_training(args.train_env, sizes.train_seeds, steps,
                                args.out.parent / "gpu_train", sizes.train_eval_episodes)

    runner.run("update", update_items(args.presets[:1]))
    runner.run("loop", loop_items([("multigoal" if env == "MultiGoal" else "code", env)
                                   for env in args.loop_envs]))
    if args.train_env != "none":
        runner.run("train", [Item(f"train {args.train_env} S={sizes.train_seeds}", "train",
                                  train_run)])
    runner.run("update_extra", update_items(args.presets[1:]))
    runner.run("loop_extra", loop_items([(name, "MultiGoal") for name in args.loop_configs]))
    runner.retry_skipped("retry")

    report.data["complete"] = True
    report.save()
    print()
    print(markdown(report.data))
    where = [str(args.out)] + ([str(report.copy_dir / "gpu.json")] if report.copy_dir else [])
    print("wrote " + ", ".join(where))
    return report.data


if __name__ == "__main__":
    main()
