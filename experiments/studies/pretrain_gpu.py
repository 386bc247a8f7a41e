"""The transfer study's pretraining on an accelerator, within a wall-clock budget.

    python -m experiments.studies.pretrain_gpu [--seeds 16] [--steps 5000000]
        [--max-minutes 7] [--out DIR] [--archive] [SQLConfig flags]

Trains SQL's ``pretrain`` preset (alpha = 0.1) on ``mjx:AntAnyDirection``
(``sqljax/AntAnyDirection-v1`` stepped by MJX, :mod:`sqljax.envs.mjx_ant_tasks`), N
seeds in lockstep in the compiled loop (``jax.vmap`` over seeds, the paper's 5M env
steps by default), until ``--max-minutes`` have passed since the process started,
imports and compilation included: the run then ends at its next metrics row
(``--log-every`` env steps), as at its last step (``multi_seed.train``'s ``deadline``).
No checkpoints unless ``--checkpoint-every`` (each holds the replay buffers); no
evaluation unless ``--eval-every`` (the learners evaluate later, e.g. on gymnasium's
task: ``python -m experiments.evaluate --ckpt DIR/seed0 --env AntAnyDirection-v1``).

Writes into ``--out`` (default ``$OUT`` if set, else ``runs/pretrain-gpu``):

    seed<i>/learner.msgpack, sqljax.json   each seed's learner export (``export_learner``),
                                           the zoo layout (zoo/AntAnyDirection-v1/pretrain/)
    metrics.csv                            every seed's metrics rows, a ``seed`` column first
    pretrain.json                          what ran: command, config, env steps done, whether
                                           time ran out, wall time, device, env steps/s,
                                           evaluations

With ``--archive`` the ``seed<i>/`` directories go into one ``learners.tar.gz`` instead
(``tar xzf learners.tar.gz -C DIR`` restores them), so that the whole output is three
files (for machines that hand back only a few). The run directory (run.json,
config.json, per-seed metrics and TensorBoard events, checkpoints if any) is
``--run-dir`` (default ``runs/pretrain-gpu-run``). Bad input: one line, exit status 2.
"""

from __future__ import annotations

import time

_STARTED = time.monotonic()  # the budget counts from here: imports and compilation included

# isort: split
import argparse
import csv
import json
import os
import shutil
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

import sqljax
from experiments import cli
from sqljax.envs import registry
from sqljax.loops import RunError, multi_seed
from sqljax.store import run_dir as rd

ENV = "mjx:AntAnyDirection"
PRESET = "pretrain"
#: The paper's pretraining length: 500 epochs of 10,000 env steps.
PAPER_STEPS = 5_000_000
LEARNERS_ARCHIVE = "learners.tar.gz"
METRICS_CSV = "metrics.csv"
RECORD = "pretrain.json"


def default_out() -> Path:
    return Path(os.environ.get("OUT") or "runs/pretrain-gpu")


def build_parser() -> argparse.ArgumentParser:
    p = cli.Parser(prog="python -m experiments.studies.pretrain_gpu",
                   description="Pretrain SQL (preset pretrain) on mjx:AntAnyDirection, N seeds in "
                               "lockstep, for --steps or --max-minutes, whichever ends first; "
                               "write each seed's learner export and the metrics to --out.")
    run = p.add_argument_group("run")
    run.add_argument("--env", default=ENV, help=f"a JAX-native task (default {ENV})")
    run.add_argument("--seeds", type=int, default=16, help="number of seeds N (default 16)")
    run.add_argument("--steps", type=int, default=PAPER_STEPS,
                     help=f"env steps per seed at most (default {PAPER_STEPS}, the paper's)")
    run.add_argument("--max-minutes", type=float, default=7.0, help="wall-clock budget from the "
                     "process's start, compilation included (default 7; 0: none)")
    run.add_argument("--out", help="where the exports go (default $OUT, else runs/pretrain-gpu)")
    run.add_argument("--run-dir", default="runs/pretrain-gpu-run", help="the run directory")
    run.add_argument("--archive", action="store_true", help=f"pack the seed<i>/ exports into "
                     f"{LEARNERS_ARCHIVE}")
    run.add_argument("--log-every", type=int, default=1000, help="env steps between metrics rows, "
                     "where the budget is checked (default 1000)")
    run.add_argument("--eval-every", type=int, default=0, help="env steps between evaluations "
                     "(default 0: none; one at the end if on)")
    run.add_argument("--eval-episodes", type=int, default=5, help="per seed and mode (default 5)")
    run.add_argument("--checkpoint-every", type=int, default=0, help="env steps between "
                     "checkpoints (default 0: none; one at the end if on)")
    run.add_argument("--devices", type=int, help="use the first D of jax.devices() (default all)")
    cli.add_config_flags(p, "hyperparameters (SQLConfig fields; default: the pretrain preset's)")
    return p


def spec_from_args(args: argparse.Namespace) -> rd.RunSpec:
    cli.check_at_least(args, {"seeds": 1, "steps": 1, "log_every": 1, "eval_episodes": 1,
                              "eval_every": 0, "checkpoint_every": 0})
    if args.max_minutes < 0:
        raise RunError(f"--max-minutes must be >= 0, got {args.max_minutes}")
    env_id = cli.task_env_id(args.env)
    if not registry.is_jax_native(env_id):
        raise RunError(f"{args.env} is not a JAX-native task; this command trains in the "
                       "compiled loop (e.g. mjx:AntAnyDirection)")
    cfg = cli.make_config(env_id, PRESET, cli.config_overrides(args))
    spec = rd.RunSpec(env_id=env_id, config=cfg, seed_ids=tuple(range(args.seeds)),
                      steps=args.steps, out=Path(args.run_dir), eval_every=args.eval_every,
                      eval_episodes=args.eval_episodes, checkpoint_every=args.checkpoint_every,
                      keep_checkpoints=1, log_every=args.log_every, progress=False,
                      preset=PRESET, label=PRESET, devices=args.devices)
    try:
        rd.check_new(spec)
    except RunError as e:  # (its advice names --out, the run directory of other commands)
        raise RunError(str(e).replace("--out", "--run-dir")) from None
    return spec


def write_metrics(run_dir: Path, seed_ids: Sequence[int], path: Path) -> int:
    """Every seed's metrics rows in one CSV with a ``seed`` column first; the row count."""
    rows = [{"seed": s, **r} for s in seed_ids for r in rd.read_metrics(run_dir, s)]
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, columns, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return len(rows)


def export_seeds(result: dict[str, Any], spec: rd.RunSpec, out: Path, command: str) -> list[Path]:
    """Each seed's final learner as ``out/seed<i>`` (the zoo layout), with its last
    evaluation's returns where one was made at the end."""
    last = result["evals"][-1] if result["evals"] else None
    paths = []
    for j, sid in enumerate(result["seed_ids"]):
        one = jax.tree.map(lambda x, j=j: np.asarray(x)[j], result["agents"])
        at_end = ({m: last[m][j] for m in ("stochastic", "deterministic")}
                  if last is not None and last["step"] == result["env_steps"] else None)
        paths.append(sqljax.export_learner(out / f"seed{sid}", one, metadata={
            "env_id": spec.env_id, "seed": sid, "env_steps": result["env_steps"],
            "preset": PRESET, "eval_return": at_end, "command": command}))
    return paths


def pack(paths: Sequence[Path], archive: Path) -> None:
    """The directories ``paths`` into one gzipped tar at ``archive``, then removed."""
    with tarfile.open(archive, "w:gz") as tar:
        for p in paths:
            tar.add(p, arcname=p.name)
    for p in paths:
        shutil.rmtree(p)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        spec = spec_from_args(args)
        out = Path(args.out) if args.out else default_out()
        out.mkdir(parents=True, exist_ok=True)
        deadline = _STARTED + 60 * args.max_minutes if args.max_minutes else None
        device = jax.devices()[0]
        print(f"pretrain {spec.env_id}: {spec.n_seeds} seeds x at most {spec.steps} env steps"
              f"{f' or {args.max_minutes:g} minutes' if deadline else ''}, preset {PRESET}, on "
              f"{len(jax.devices())} {device.platform} device(s) ({device.device_kind})")
        result = multi_seed.train(spec, deadline=deadline)
        wall = time.monotonic() - _STARTED
        command = "python -m experiments.studies.pretrain_gpu " + " ".join(argv)
        paths = export_seeds(result, spec, out, command)
        if args.archive:
            pack(paths, out / LEARNERS_ARCHIVE)
        n_rows = write_metrics(spec.out, spec.seed_ids, out / METRICS_CSV)
        rates = result["steps_per_sec"][1:] or result["steps_per_sec"]  # the first: compilation
        record = {
            "command": command, "env_id": spec.env_id, "preset": PRESET,
            "config": spec.config.to_dict(), "seed_ids": list(spec.seed_ids),
            "steps_target": spec.steps, "env_steps": result["env_steps"],
            "out_of_time": result["out_of_time"], "max_minutes": args.max_minutes,
            "wall_s": round(wall, 1), "device": f"{device.platform} {device.device_kind}",
            "n_devices": result["n_devices"],
            "env_steps_per_s_per_seed": float(np.median(rates)) if rates else None,
            "env_steps_per_s_note": "median over metrics rows, the first (compilation) left out",
            "evals": result["evals"], "run_dir": str(spec.out),
            "learners": LEARNERS_ARCHIVE if args.archive else [p.name for p in paths],
        }
        (out / RECORD).write_text(json.dumps(record, indent=2) + "\n")
    except cli.HANDLED_ERRORS as e:
        return cli.report_error(e, "interrupted; nothing exported")
    print(f"done: {result['env_steps']} env steps per seed"
          f"{' (out of time)' if result['out_of_time'] else ''} in {wall:.0f} s; "
          f"{len(paths)} learners, {n_rows} metrics rows")
    print(f"outputs in {out}: {', '.join(sorted(p.name for p in out.iterdir()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
