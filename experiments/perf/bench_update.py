"""Speed of one learner update (SQL's `sqljax.update`, DDPG's, TD3's) at MuJoCo sizes,
against this machine's matmul rate.

    python -m experiments.perf.bench_update [--sizes HalfCheetah Ant] [--n 100]
                                       [--configs sql:code ddpg:code ddpg:modern]
                                       [--learner sql --preset code modern] [--out runs/bench]

For each learner:preset and size: median milliseconds per update (each update timed alone,
after warm-up), the FLOPs XLA counts for one update (`compiled.cost_analysis()`), the
achieved GFLOP/s, a matmul GFLOP/s measured in the same run, their ratio
(`fraction_of_peak`), and updates/s for 1, 4 and 8 seeds vmapped into one call, against
one seed alone. With several configs, each one's time per update relative to the first
(measured in the same process, so the ratio holds on a busy machine too). Writes
`<out>/update.json`. Medians, since shared machines are noisy.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import sqljax
from sqljax import learners

#: What one run times by default: SQL, DDPG, TD3 (DDPG's modern preset) and SAC.
DEFAULT_CONFIGS = ("sql:code", "ddpg:code", "ddpg:modern", "sac:code")

SIZES = {"HalfCheetah": (17, 6), "Ant": (105, 8), "Hopper": (11, 3), "Humanoid": (348, 17)}


def median_seconds(fn, args, n: int, warmup: int = 5) -> float:
    """Median wall time of fn(*args) over n calls, each waited for."""
    for _ in range(warmup):
        jax.block_until_ready(fn(*args))
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def flops_of(compiled) -> float:
    cost = compiled.cost_analysis()
    if isinstance(cost, (list, tuple)):
        cost = cost[0]
    return float(cost.get("flops", float("nan")))


def matmul_gflops(n: int = 1024, reps: int = 30) -> float:
    """This machine's float32 matmul rate: an n x n by n x n product."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    mm = jax.jit(jnp.matmul)
    return 2 * n**3 / median_seconds(mm, (a, b), reps) / 1e9


def random_batch(key, batch_size: int, obs_dim: int, action_dim: int) -> sqljax.Batch:
    k = jax.random.split(key, 5)
    return sqljax.Batch(
        jax.random.normal(k[0], (batch_size, obs_dim)),
        jax.random.uniform(k[1], (batch_size, action_dim), minval=-1, maxval=1),
        jax.random.normal(k[2], (batch_size,)),
        jax.random.normal(k[3], (batch_size, obs_dim)),
        (jax.random.uniform(k[4], (batch_size,)) < 0.01).astype(jnp.float32),
    )


def bench_size(name: str, cfg, n: int, seeds: list[int], peak: float) -> dict:
    learner = learners.of_config(cfg)
    obs_dim, action_dim = SIZES[name]
    state = learner.init(jax.random.key(0), cfg, obs_dim, action_dim)
    batch = random_batch(jax.random.key(1), cfg.batch_size, obs_dim, action_dim)
    compiled = jax.jit(learner.update).lower(state, batch).compile()
    flops = flops_of(compiled)
    sec = median_seconds(compiled, (state, batch), n)
    out = {
        "obs_dim": obs_dim,
        "action_dim": action_dim,
        "ms_per_update": sec * 1e3,
        "flops_per_update": flops,
        "gflops_per_s": flops / sec / 1e9,
        "fraction_of_peak": flops / sec / 1e9 / peak,
        "seeds": {},
    }
    for n_seeds in seeds:
        keys = jax.random.split(jax.random.key(2), n_seeds)
        states = jax.vmap(lambda k: learner.init(k, cfg, obs_dim, action_dim))(keys)
        batches = jax.vmap(lambda k: random_batch(k, cfg.batch_size, obs_dim, action_dim))(keys)
        vcompiled = jax.jit(jax.vmap(learner.update)).lower(states, batches).compile()
        vsec = median_seconds(vcompiled, (states, batches), max(n // 2, 20))
        out["seeds"][str(n_seeds)] = {
            "ms_per_call": vsec * 1e3,
            "updates_per_s": n_seeds / vsec,
        }
    one = out["seeds"][str(seeds[0])]["updates_per_s"] if seeds[0] == 1 else 1.0 / sec
    for v in out["seeds"].values():
        v["per_seed_cost_vs_one_seed"] = one / v["updates_per_s"]
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", default=["HalfCheetah", "Ant"], choices=sorted(SIZES))
    p.add_argument("--n", type=int, default=100, help="timed updates per size (>= 50)")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 4, 8])
    p.add_argument("--configs", nargs="+", metavar="LEARNER:PRESET",
                   help="learner:preset pairs; the first is the reference for cost ratios "
                        f"(default: {' '.join(DEFAULT_CONFIGS)}, i.e. SQL, DDPG, TD3 and SAC)")
    p.add_argument("--learner", choices=learners.names(), help="only this learner (with --preset)")
    p.add_argument("--preset", nargs="+", help="presets of --learner (default sql) to time")
    p.add_argument("--out", default="runs/bench")
    args = p.parse_args(argv)
    if args.n < 50:
        p.error("--n must be at least 50")
    if args.configs:
        configs = args.configs
    elif args.learner or args.preset:
        configs = [f"{args.learner or learners.DEFAULT}:{x}" for x in args.preset or ["code"]]
    else:
        configs = list(DEFAULT_CONFIGS)
    try:
        built = {c: learners.get(c.split(":")[0]).make_config(c.partition(":")[2] or "code")
                 for c in configs}
    except ValueError as e:
        p.error(str(e))
    peak = matmul_gflops()
    result = {
        "device": str(jax.devices()[0]),
        "platform": platform.platform(),
        "jax": jax.__version__,
        "matmul_gflops_per_s": peak,
        "presets": {},
    }
    print(f"device {result['device']}, matmul {peak:.1f} GFLOP/s (1024^3 float32)")
    for preset, cfg in built.items():
        sizes = result["presets"][preset] = {}
        for name in args.sizes:
            r = sizes[name] = bench_size(name, cfg, args.n, args.seeds, peak)
            ref = result["presets"][configs[0]][name]
            r["ms_per_update_vs_" + configs[0]] = r["ms_per_update"] / ref["ms_per_update"]
            print(f"{preset:12s} {name:12s} obs {r['obs_dim']:3d} act {r['action_dim']:2d}: "
                  f"{r['ms_per_update']:.2f} ms/update, {r['flops_per_update'] / 1e6:.0f} MFLOP, "
                  f"{r['gflops_per_s']:.1f} GFLOP/s = {r['fraction_of_peak']:.2f} of matmul"
                  + (f", {r['ms_per_update'] / ref['ms_per_update']:.2f}x {configs[0]}'s time"
                     if preset != configs[0] else ""))
            for s, v in r["seeds"].items():
                print(f"{'':25s} {s:>2s} seeds vmapped: {v['updates_per_s']:.0f} updates/s, "
                      f"per-seed cost {v['per_seed_cost_vs_one_seed']:.2f}x one seed")
    # the peak again at the end: the machine may have changed speed meanwhile
    result["matmul_gflops_per_s_after"] = matmul_gflops()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "update.json").write_text(json.dumps(result, indent=2))
    print(f"wrote {out / 'update.json'}")
    return result


if __name__ == "__main__":
    main()
