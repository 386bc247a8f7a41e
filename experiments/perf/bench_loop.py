"""What the host training loop costs beyond the update itself.

    python -m experiments.perf.bench_loop [--env HalfCheetah Ant] [--rounds 5] [--steps 200]

For each env, with the default config and the task's reward scale, in interleaved rounds
(shared machines are noisy, so the three are timed side by side and medians reported):

* ``update``: ``jax.jit(sqljax.update)`` alone on a fixed batch (the floor);
* ``fused``: the loop's per-step device call alone (replay add + sample + update + next
  action + divergence check; one seed), called back to back without an env;
* ``loop``: the real per-step host loop: env step, reset at episode ends, the fused call,
  the action copied back.

Then ``sqljax.loops.multi_seed.train`` itself (one seed) for ``--train-steps`` steps (no
evaluation, no checkpoints), whose ``metrics.csv`` steps/s is what a run reports. Prints ms per step
and steps/s; overhead = loop - update.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import sqljax
from sqljax import seeding
from sqljax.envs.gym_adapter import resolve_env_id
from sqljax.loops import multi_seed
from sqljax.loops.gym_loop import GymProgram
from sqljax.store.run_dir import RunSpec, read_metrics


def bench(env_id: str, rounds: int, steps: int, train_steps: int) -> dict:
    cfg = sqljax.SQLConfig.preset("code", task=env_id)
    out = Path(tempfile.mkdtemp(prefix="bench_loop_"))
    spec = RunSpec(env_id=env_id, config=cfg, seed_ids=(0,), steps=100_000, out=out / "probe")
    mesh = multi_seed.mesh_for(1, None)
    prog = GymProgram(spec, mesh)
    fresh_stats, _ = multi_seed.stats_fns(mesh, 1)
    carry = prog.begin(prog.fns["init"](seeding.to_global(seeding.seed_keys(0, [0]), seeding.seed_sharding(mesh))), 0)
    stats = fresh_stats()
    t = cfg.learning_starts + 5  # fill the replay with real transitions, compile
    carry, stats, _ = prog.advance(carry, stats, 0, t, lambda: False)
    agent = jax.tree.map(lambda x: jnp.copy(x[0]), carry.agent)
    batch = sqljax.replay.sample(seeding.unstack(carry.buffer, 0), jax.random.PRNGKey(2), cfg.batch_size)
    update = jax.jit(sqljax.update, donate_argnums=0)
    agent, _ = update(agent, batch)
    jax.block_until_ready(agent)

    times = {"update": [], "fused": [], "loop": []}
    o = prog.obs_dim
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(steps):
            agent, _ = update(agent, batch)
        jax.block_until_ready(agent)
        times["update"].append((time.perf_counter() - start) / steps)

        start = time.perf_counter()
        for _ in range(steps):
            fixed = np.zeros((1, 2 * o + 3), np.float32)  # the loop's fresh vector per step
            carry, stats, action = prog.fns["learn"](carry, stats, fixed)
            action = np.asarray(action)
        times["fused"].append((time.perf_counter() - start) / steps)

        start = time.perf_counter()
        carry, stats, _ = prog.advance(carry, stats, t, t + steps, lambda: False)
        np.asarray(prog.actions)
        t += steps
        times["loop"].append((time.perf_counter() - start) / steps)
    prog.close()
    med = {k: float(np.median(v)) for k, v in times.items()}

    try:
        run = RunSpec(env_id=env_id, config=cfg, seed_ids=(0,), steps=train_steps, out=out / "run",
                      eval_every=0, checkpoint_every=0, log_every=500, progress=False)
        multi_seed.train(run, log=lambda s: None)
        rows = [r for r in read_metrics(out / "run", 0) if int(r["step"]) > cfg.learning_starts + 500]
        train_sps = float(np.median([float(r["steps_per_sec"]) for r in rows])) if rows else float("nan")
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {
        "env": env_id,
        "update_ms": 1e3 * med["update"], "fused_ms": 1e3 * med["fused"], "loop_ms": 1e3 * med["loop"],
        "overhead_ms": 1e3 * (med["loop"] - med["update"]),
        "updates_per_sec": 1 / med["update"], "loop_steps_per_sec": 1 / med["loop"],
        "train_steps_per_sec": train_sps,
        "rounds_ms": {k: [round(1e3 * x, 2) for x in v] for k, v in times.items()},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", nargs="+", default=["HalfCheetah"])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=200, help="steps per round and kind")
    p.add_argument("--train-steps", type=int, default=3000)
    p.add_argument("--out", help="write the results as JSON here")
    args = p.parse_args()
    results = []
    for name in args.env:
        r = bench(resolve_env_id(name), args.rounds, args.steps, args.train_steps)
        results.append(r)
        print(f"{r['env']}: update {r['update_ms']:.2f} ms ({r['updates_per_sec']:.0f}/s), "
              f"fused call {r['fused_ms']:.2f} ms, loop {r['loop_ms']:.2f} ms/step "
              f"({r['loop_steps_per_sec']:.0f} steps/s), overhead {r['overhead_ms']:.2f} ms/step; "
              f"train() {r['train_steps_per_sec']:.0f} steps/s")
        print(f"  per round (ms): {r['rounds_ms']}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
