"""Run a saved policy: mean ± std of the return over N episodes, and an MP4 of one.

    python -m experiments.evaluate --ckpt runs/Ant-v5/seed0 --episodes 10
    python -m experiments.evaluate --ckpt runs/Ant-v5/seed0/checkpoints/step_001000000 \
        --mode deterministic --video ant.mp4

``--ckpt`` is a checkpoint directory or a run directory (its latest checkpoint). The env
is the one the run trained on unless ``--env`` names another with the same sizes.
Both the stochastic sampler (fresh xi every step, the authors' evaluation) and the
deterministic one (xi = 0) are evaluated unless ``--mode`` picks one; the first episode of
the first mode is rendered to MP4 (MuJoCo renders on the CPU with ``MUJOCO_GL=egl``).
Bad input ends with one line on stderr (``error: ...``) and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import jax  # noqa: E402
import numpy as np  # noqa: E402

import sqljax  # noqa: E402
from experiments import cli  # noqa: E402
from sqljax import seeding  # noqa: E402
from sqljax.envs import make_jax_env, registry  # noqa: E402
from sqljax.envs.gym_adapter import EnvError, make_env, resolve_env_id  # noqa: E402
from sqljax.envs.jax_env import space_dims  # noqa: E402
from sqljax.loops import RunError, evaluation  # noqa: E402
from sqljax.loops.evaluation import rollout  # noqa: E402
from sqljax.store import run_dir as rd  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = cli.Parser(prog="python -m experiments.evaluate",
                description="Evaluate a saved policy of any learner (SQL, DDPG, TD3) and record a video.")
    p.add_argument("--ckpt", required=True, help="checkpoint directory, or a run directory "
                   "(its latest checkpoint)")
    p.add_argument("--episodes", type=int, default=5, help="episodes per mode (default 5)")
    p.add_argument("--mode", choices=("both", "stochastic", "deterministic"), default="both",
                   help="stochastic: the learner's exploring actions (SQL: fresh xi each step); "
                        "deterministic: its greedy ones (SQL: xi = 0; DDPG: mu(s)) (default: both)")
    p.add_argument("--env", help="evaluate on this env instead of the run's (same sizes)")
    p.add_argument("--seed", type=int, default=0, help="seed of the episodes' starts and noise (default 0)")
    p.add_argument("--max-episode-steps", type=int, help="time limit (default: the config's, "
                   "capped by the env's own)")
    p.add_argument("--video", help="MP4 path (default: <run>/videos/<checkpoint>_<mode>.mp4)")
    p.add_argument("--frames", metavar="PNG", help="also write a strip of --n-frames evenly spaced "
                   "frames of the recorded episode to this PNG")
    p.add_argument("--n-frames", type=int, default=5, help="frames in the --frames strip (default 5)")
    p.add_argument("--no-video", action="store_true", help="do not render")
    p.add_argument("--width", type=int, default=480, help="video width (default 480)")
    p.add_argument("--height", type=int, default=360, help="video height (default 360)")
    p.add_argument("--pretty", action="store_true", help="render MuJoCo shadows and reflections "
                   "(several times slower on a CPU renderer)")
    return p


def _default_video(ckpt: Path, mode: str) -> Path:
    parent = ckpt.parent
    run_dir = parent.parent if parent.name == rd.CHECKPOINT_DIR else parent
    return run_dir / "videos" / f"{ckpt.name}_{mode}.mp4"


def _render_env(env_id: str, limit: int | None, width: int, height: int, pretty: bool):
    """A renderable env, or (None, reason)."""
    try:
        env = make_env(env_id, limit, render_mode="rgb_array", width=width, height=height)
    except (EnvError, TypeError):
        try:  # envs whose constructor takes no image size
            env = make_env(env_id, limit, render_mode="rgb_array")
        except Exception as e:  # noqa: BLE001
            return None, f"{type(e).__name__}: {e}"
    except Exception as e:  # noqa: BLE001
        return None, f"{type(e).__name__}: {e}"
    try:
        env.reset(seed=0)
        frame = env.render()
        env.setup_mujoco_camera(follow=True, fast=not pretty)
        if frame is None or np.asarray(frame).ndim != 3:
            env.close()
            return None, "the env returns no RGB frames"
    except Exception as e:  # noqa: BLE001
        env.close()
        return None, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return env, None


def write_frame_strip(frames: Sequence[np.ndarray], path: Path, n: int) -> Path:
    """One PNG of ``n`` evenly spaced frames side by side (first to last)."""
    import imageio.v2 as imageio

    picks = np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int)
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.imwrite(path, np.concatenate([np.asarray(frames[i]) for i in picks], axis=1))
    return path


def _evaluate_jax(agent, jax_env, env_id: str, ckpt: Path, modes, episodes: int, seed: int,
                  limit: int) -> int:
    """A JAX-native env's episodes, all in one compiled rollout per mode (no video)."""
    episodes_of = jax.jit(rollout, static_argnames=("n_episodes", "env", "env_params",
                                                    "deterministic", "max_steps"))
    key = jax.random.fold_in(jax.random.key(seed), seeding.EVAL_TAG)
    print(f"{ckpt} ({env_id}), {episodes} episode(s) per mode (no video: a JAX-native env)")
    for mode in modes:
        out = episodes_of(agent, key, n_episodes=episodes, env=jax_env[0], env_params=jax_env[1],
                      deterministic=mode == "deterministic", max_steps=limit)
        r, n = np.asarray(out["episode_return"]), np.asarray(out["length"])
        print(f"{mode:>13}: return {np.mean(r):.1f} ± {np.std(r):.1f}  "
              f"(min {np.min(r):.1f}, max {np.max(r):.1f}, mean length {np.mean(n):.0f})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        cli.check_at_least(args, {"episodes": 1, "n_frames": 1})
        ckpt = rd.find_checkpoint(args.ckpt)
        meta = sqljax.read_checkpoint_metadata(ckpt)
        saved_env = meta.get("metadata", {}).get("env_id")
        if args.env:
            env_id = resolve_env_id(args.env)
        elif saved_env:
            env_id = saved_env
        else:
            raise RunError(f"{ckpt} does not record its environment; pass --env")
        agent = sqljax.load_checkpoint(ckpt)
        limit = args.max_episode_steps or agent.config.max_episode_steps
        if env_id.startswith(registry.JAX_ONLY_PREFIXES):  # JAX-native only: no gymnasium env
            try:
                jax_env = make_jax_env(env_id)
            except ValueError as e:
                raise RunError(str(e)) from None
            sizes = space_dims(*jax_env)
        else:
            probe = make_env(env_id, limit)
            sizes = (probe.obs_dim, probe.action_dim)
            probe.close()
        if sizes != (agent.obs_dim, agent.action_dim):
            raise RunError(f"checkpoint {ckpt} has observation size {agent.obs_dim} and action size "
                           f"{agent.action_dim}, but {env_id} has observation size {sizes[0]} and "
                           f"action size {sizes[1]}")
    except (cli.BadInput, *cli.BAD_INPUT_ERRORS, KeyboardInterrupt) as e:
        return cli.report_error(e, "interrupted")

    modes = ("stochastic", "deterministic") if args.mode == "both" else (args.mode,)
    if env_id.startswith(registry.JAX_ONLY_PREFIXES):
        return _evaluate_jax(agent, jax_env, env_id, ckpt, modes, args.episodes, args.seed, limit)
    record = None if args.no_video else modes[0]
    envs = [make_env(env_id, limit) for _ in range(len(modes) * args.episodes)]
    if record is not None:
        render_env, why = _render_env(env_id, limit, args.width, args.height, args.pretty)
        if render_env is None:
            why = why if len(why) <= 160 else why[:157] + "..."
            print(f"note: no video: {env_id} cannot be rendered here ({why})", file=sys.stderr)
            record = None
        else:
            envs[0].close()
            envs[0] = render_env
    key = jax.random.key_data(jax.random.fold_in(jax.random.key(args.seed), seeding.EVAL_TAG))
    env_seeds = seeding.eval_env_seeds(args.seed, 0, 0, args.episodes) * len(modes)
    step = meta.get("metadata", {}).get("env_steps")
    print(f"{ckpt} ({'step ' + str(step) + ', ' if step is not None else ''}{env_id}), "
          f"{args.episodes} episode(s) per mode")
    mesh = seeding.seed_mesh(jax.devices()[:1])
    agents = seeding.to_global(jax.tree.map(lambda x: np.asarray(x)[None], agent),
                             seeding.seed_sharding(mesh))
    deterministic = np.repeat([m == "deterministic" for m in modes], args.episodes)
    out = evaluation.evaluate(agents, mesh, {0: envs}, {0: env_seeds}, np.asarray(key)[None],
                            deterministic, record=record is not None)
    for env in envs:
        env.close()
    res = {m: out["returns"][0, i * args.episodes:(i + 1) * args.episodes] for i, m in enumerate(modes)}
    res["lengths"] = {m: out["lengths"][0, i * args.episodes:(i + 1) * args.episodes]
                      for i, m in enumerate(modes)}
    res["frames"] = out["frames"]
    for mode in modes:
        r = res[mode]
        print(f"{mode:>13}: return {np.mean(r):.1f} ± {np.std(r):.1f}  "
              f"(min {np.min(r):.1f}, max {np.max(r):.1f}, mean length {np.mean(res['lengths'][mode]):.0f})")
    if record is not None and res["frames"]:
        import warnings

        import imageio.v2 as imageio

        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called")  # ffmpeg subprocess

        path = Path(args.video) if args.video else _default_video(ckpt, record)
        path.parent.mkdir(parents=True, exist_ok=True)
        fps = int(round(1.0 / getattr(envs[0].env.unwrapped, "dt", 1 / 30)))
        imageio.mimsave(path, [np.asarray(f) for f in res["frames"]], fps=fps, macro_block_size=8)
        print(f"video ({record}, episode 1, return {res[record][0]:.1f}): {path}")
        if args.frames:
            print(f"frames: {write_frame_strip(res['frames'], Path(args.frames), args.n_frames)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
