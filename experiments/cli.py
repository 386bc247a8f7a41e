"""What the command lines share: one-line errors and exit statuses, the learner
(``--learner sql|ddpg|sac``) and its config's fields as flags (``--reward-scale 30``,
``--hidden-sizes 256 256``; the chosen learner's fields and help), the run flags and their
defaults (from the task table), how a new run is specified and how a run is resumed.

Schedule flags (``--eval-every``, ``--checkpoint-every``, ``--log-every``) mean the same
in every command: unset, a default from the run length; 0, never."""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqljax
from sqljax import learners
from sqljax.envs import registry
from sqljax.envs.gym_adapter import EnvError, env_info, resolve_env_id
from sqljax.loops import NonFiniteError, RunError, Stopped
from sqljax.store import run_dir as rd

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 1
EXIT_INTERRUPTED = 130

#: Errors that mean the user's input or the machine was wrong (exit status 2, one line on
#: stderr): bad flags, env ids, checkpoints, and OS errors (permissions, a full disk).
BAD_INPUT_ERRORS = (RunError, EnvError, sqljax.CheckpointError, OSError)

CONFIG_HELP: dict[str, str] = {
    "warmup_actions": "policy (act with the learner from the start) or uniform (uniform "
                      "actions, the same for every learner, until learning_starts)",
    "hidden_sizes": "hidden layer sizes of the networks",
    "qf_lr": "Adam learning rate of Q",
    "policy_lr": "Adam learning rate of the sampler",
    "batch_size": "transitions per update",
    "discount": "discount gamma, in (0, 1]",
    "reward_scale": "1 / temperature alpha (task default from the authors' table)",
    "value_n_particles": "K_V, uniform action samples for the soft value",
    "kernel_n_particles": "K, sampler particles per state in the SVGD step",
    "kernel_update_ratio": "share of the K particles moved by SVGD, in (0, 1)",
    "kernel_h_min": "lower bound of the RBF bandwidth",
    "target_update_interval": "updates between target-network updates",
    "target_tau": "target update rate (1 = hard copy)",
    "n_q": "number of Q-functions (1, or 2 for a clipped double Q)",
    "replay_size": "replay capacity in transitions (capped at the run length)",
    "learning_starts": "env steps stored before the first update",
    "updates_per_step": "updates per env step (one lax.scan per step)",
    "max_episode_steps": "time limit (the shorter of this and the env's own applies)",
    "anneal_steps": "fine-tuning: updates over which the schedules run (0 = off)",
    "final_reward_scale": "fine-tuning: reward scale reached after anneal_steps (log-linear)",
    "noise_bank_size": "fine-tuning: K_xi fixed noise vectors, shrinking to 1 (0 = off)",
    "q_units": "scaled (Q in scaled-reward units, the authors' code) or reward (Q in reward "
               "units, alpha in the soft value; --init-from converts)",
    # DDPG / TD3
    "actor_lr": "Adam learning rate of the actor",
    "critic_lr": "Adam learning rate of the critic(s)",
    "exploration": "ou (Ornstein-Uhlenbeck noise, reset each episode) or gaussian",
    "ou_theta": "OU noise's mean reversion theta",
    "ou_sigma": "OU noise's scale sigma",
    "exploration_sigma": "std of the gaussian exploration noise",
    "policy_noise": "TD3's target policy smoothing std (0 = off)",
    "noise_clip": "TD3's clip of the target smoothing noise",
    "policy_delay": "critic updates per actor and target update (TD3: 2)",
    # SAC
    "alpha_lr": "Adam learning rate of the temperature (log alpha)",
    "init_alpha": "the temperature alpha at the start",
    "target_entropy": "entropy the temperature is tuned to (default -|A|)",
    "learn_alpha": "tune alpha to the target entropy (false: alpha stays at init_alpha)",
}


class BadInput(Exception):
    """A command line argparse rejected."""


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line (``error: ...``, exit 2)
    through :func:`report_error` instead of printing the usage."""

    def error(self, message: str):  # noqa: D401
        raise BadInput(f"{message} (see --help)")


def report_error(e: BaseException, interrupted_hint: str) -> int:
    """Print one `error:` line (or the hint, on Ctrl-C; what was saved, on a stop by a
    signal) and return the exit status: 1 for a diverged run, 128 + the signal's number
    for a stop or an interrupt, 2 for bad input."""
    if isinstance(e, KeyboardInterrupt):
        print(interrupted_hint, file=sys.stderr)
        return EXIT_INTERRUPTED
    if isinstance(e, Stopped):
        print(e, file=sys.stderr)
        return 128 + (e.signum or 2)
    if isinstance(e, OSError) and e.strerror:
        e = f"{e.strerror}: {e.filename}" if e.filename else e.strerror
    print(f"error: {e}", file=sys.stderr)
    return EXIT_DIVERGED if isinstance(e, NonFiniteError) else EXIT_BAD_INPUT


#: What a command's main catches and hands to report_error.
HANDLED_ERRORS = (BadInput, *BAD_INPUT_ERRORS, NonFiniteError, Stopped, KeyboardInterrupt)


class Default(int):
    """An option's default value, told apart from the same value given on the command line."""


def after_run(draw, *args, **kwargs) -> None:
    """Call ``draw`` (a plot of what a run wrote) after the run, even a stopped or failed
    one; its own failure is a note on stderr, never an error hiding the run's."""
    try:
        draw(*args, **kwargs)
    except Exception as e:  # a missing plot must not mask the run's outcome
        print(f"note: no plot ({type(e).__name__}: {e})", file=sys.stderr)


def flag(name: str) -> str:
    """``reward_scale`` -> ``--reward-scale``."""
    return "--" + name.replace("_", "-")


def optional_float(text: str) -> float | None:
    """A float, or None for ``none``, ``off``, ``0`` or an empty string."""
    return None if text.lower() in ("none", "off", "", "0") else float(text)


def check_at_least(args: argparse.Namespace, least: Mapping[str, int]) -> None:
    """RunError naming the flag if a given integer option is below its least value
    (``least``: option name -> least value; options left at None are not checked)."""
    for name, lo in least.items():
        v = getattr(args, name)
        if v is not None and v < lo:
            raise RunError(f"{flag(name)} must be an integer >= {lo}, got {v}")


def chosen_learner(argv: Sequence[str] | None) -> learners.Learner:
    """The learner ``--learner`` names in ``argv`` (default SQL), read before the full
    command line so that the flags and help are the chosen learner's."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--learner")
    known, _ = pre.parse_known_args(sys.argv[1:] if argv is None else list(argv))
    try:
        return learners.get(known.learner)
    except ValueError as e:
        raise BadInput(f"--learner: {e}") from None


def add_learner_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--learner", choices=learners.names(), help="the algorithm: "
                        + ", ".join(f"{n} ({learners.get(n).title})" for n in learners.names())
                        + f" (default {learners.DEFAULT}; ddpg's modern preset is TD3; on --resume: "
                        "the run's; the flags below are the chosen learner's)")


def add_config_flags(parser: argparse.ArgumentParser, title: str, skip: Iterable[str] = (),
                     learner: learners.Learner | None = None) -> argparse._ArgumentGroup:
    """A group with one flag per field of the learner's config (default SQL's;
    ``--reward-scale``; ``--reward_scale`` works too), stored as ``cfg_<field>``, None
    unless given. The help shows the ``code`` preset's value."""
    learner = learner or learners.get(None)
    group = parser.add_argument_group(title)
    skip = set(skip)
    for f in dataclasses.fields(learner.config_class):
        if f.name in skip:
            continue
        default = list(f.default) if isinstance(f.default, tuple) else f.default
        kw: dict[str, Any] = dict(dest=f"cfg_{f.name}", default=None,
                                  help=f"{CONFIG_HELP.get(f.name, f.name)} (code preset: {default})")
        if f.name == "hidden_sizes":
            kw.update(type=int, nargs="+", metavar="H")
        elif f.name == "final_reward_scale":
            kw.update(type=optional_float, metavar="X")
        elif isinstance(f.default, str):
            kw.update(metavar="S")
        elif isinstance(f.default, bool):
            kw.update(type=lambda s: s.lower() in ("1", "true", "yes"))
        elif isinstance(f.default, int):
            kw.update(type=int, metavar="N")
        else:
            kw.update(type=float, metavar="X")
        aliases = [f"--{f.name}"] if "_" in f.name else []
        group.add_argument(flag(f.name), *aliases, **kw)
    return group


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields given on the command line (``cfg_<field>`` options)."""
    return {k.removeprefix("cfg_"): v for k, v in vars(args).items()
            if k.startswith("cfg_") and v is not None}


def config_error(e: Exception) -> str:
    """A config's validation message, led by the flag that set the field."""
    m = re.match(r"\w+Config\.(\w+) ", str(e))
    return f"{flag(m.group(1))}: {e}" if m else str(e)


# ------------------------------------------------------------------------------ run flags

def add_run_flags(parser: argparse.ArgumentParser, keep_checkpoints: int,
                  learner: learners.Learner | None = None) -> argparse._ArgumentGroup:
    """The flags every training command has (``--env`` ... ``--no-progress``); ``--preset``
    takes the presets of ``learner`` (default SQL)."""
    learner = learner or learners.get(None)
    run = parser.add_argument_group("run")
    run.add_argument("--env", help="task: gymnasium id or short name (Ant, HalfCheetah, Hopper, "
                     "Walker2d, Swimmer, Humanoid (v5), Pendulum, AntAnyDirection, AntHallway(Wide|"
                     "Narrow), AntUMaze, any id with a Box action space) or a JAX-native env "
                     "(MultiGoal, gymnax:<id>, mjx:HalfCheetah|Hopper|Walker2d|Ant|Humanoid, "
                     "mjx:AntAnyDirection|AntHallwayWide|AntHallwayNarrow|AntUMaze) trained by the "
                     "compiled loop")
    run.add_argument("--steps", type=int, help="env steps per seed (default: the task's, e.g. 1M "
                     "for MuJoCo, 30k for Pendulum; on --resume: the run's)")
    run.add_argument("--out", help="run directory")
    run.add_argument("--preset", choices=sorted(learner.presets), help=f"{learner.title}'s "
                     "hyperparameter preset (default: the task's, else code; with --init-from: the "
                     "pretrained run's config)")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last "
                     "complete checkpoint (gymnasium envs start new episodes)")
    run.add_argument("--init-from", metavar="CKPT_OR_RUN_DIR", help="start Q and the sampler from "
                     "a pretrained checkpoint (fine-tuning; optimisers and replay start fresh; a "
                     "multi-seed run or a directory of seed<i>/ learners such as zoo/<task>/<preset>: seed i "
                     "from its seed i)")
    add_schedule_flags(run, keep_checkpoints)
    return run


def add_schedule_flags(group: argparse._ArgumentGroup, keep_checkpoints: int) -> None:
    """Evaluation, checkpoint and logging schedule, devices and progress bar (0: never)."""
    group.add_argument("--eval-every", type=int, help="env steps between evaluations (default "
                       "steps/20 within [1000, 10000]; 0: never)")
    group.add_argument("--eval-episodes", type=int, help="evaluation episodes per seed and mode "
                       "(stochastic and deterministic; default 5, 20 for JAX-native envs)")
    group.add_argument("--eval-at-start", action="store_true", help="also evaluate the learners "
                       "before the first env step (step 0; with --init-from: the pretrained "
                       "learners on the new task)")
    group.add_argument("--checkpoint-every", type=int, help="env steps between checkpoints "
                       "(default steps/10 within [1000, 50000]; 0: never); one is also written "
                       "at the end")
    group.add_argument("--keep-checkpoints", type=int, default=Default(keep_checkpoints),
                       help=f"checkpoints kept on disk per run (default {keep_checkpoints}; on "
                       "--resume: the run's)")
    group.add_argument("--log-every", type=int, help="env steps between metrics rows (default "
                       "min(1000, eval-every); 0: only at evaluations, checkpoints and the end)")
    group.add_argument("--devices", type=int, help="use the first D of jax.devices() (default all)")
    group.add_argument("--no-progress", action="store_true", help="no progress bar")


def check_run_flags(args: argparse.Namespace) -> None:
    check_at_least(args, {**dict.fromkeys(("steps", "eval_episodes", "keep_checkpoints",
                                           "devices"), 1),
                          **dict.fromkeys(("eval_every", "checkpoint_every", "log_every"), 0)})


def schedule(args: argparse.Namespace, steps: int, jax_native: bool) -> dict[str, int]:
    """The run's schedule: given flags as they are (0: never), defaults from ``steps``."""
    def given(name, default):
        v = getattr(args, name)
        return default if v is None else v

    eval_every = given("eval_every", max(1000, min(10_000, steps // 20)))
    return dict(eval_every=eval_every,
                checkpoint_every=given("checkpoint_every", max(1000, min(50_000, steps // 10))),
                log_every=given("log_every", min(1000, eval_every or 1000)),
                eval_episodes=given("eval_episodes", 20 if jax_native else 5),
                eval_at_start=bool(getattr(args, "eval_at_start", False)))


def task_env_id(name: str) -> str:
    """What the user typed, as the task's id (the one normalisation of task names)."""
    return resolve_env_id(name)


def make_config(env_id: str, preset: str | None, overrides: dict[str, Any],
                base: Any = None, learner: learners.Learner | None = None) -> Any:
    """The run's config: ``base`` (a pretrained run's, when no preset is given) or the
    learner's preset (default: the task's) with the task's settings (SQL: its reward
    scale), then the overrides. ``learner``: default SQL, or ``base``'s."""
    learner = learner or (learners.of_config(base) if base is not None else learners.get(None))
    try:
        if base is not None and preset is None:
            return base.replace(**overrides)
        return learner.make_config(preset, task=env_id, **overrides)
    except (ValueError, TypeError) as e:
        raise RunError(config_error(e)) from None


def pretrained_config(init_from: str, learner: learners.Learner | None = None) -> Any:
    """The hyperparameters of the checkpoint (or run directory) ``--init-from`` names;
    RunError if it holds another learner than ``learner`` (None: any)."""
    src = rd.find_checkpoint(init_from)
    meta = sqljax.read_checkpoint_metadata(src)
    saved = meta.get("learner", learners.DEFAULT)
    if learner is not None and saved != learner.name:
        raise RunError(f"--init-from {src} holds a {saved} learner, not {learner.name}; start a "
                       f"{learner.name} run from a {learner.name} checkpoint (or pass --learner {saved})")
    try:
        return learners.config_from_dict(meta["config"], saved)
    except (ValueError, KeyError) as e:
        raise RunError(f"--init-from {src}: unreadable config ({e})") from None


def new_run_spec(args: argparse.Namespace, seed_ids: tuple[int, ...], default_out, **extra) -> rd.RunSpec:
    """A new run's spec from the command line (``--env``, ``--learner``, ``--preset``, config
    flags, ``--init-from``, schedule): the setup every training command shares.
    ``default_out(env_id, preset, overrides) -> Path`` names the run directory when
    ``--out`` is not given; ``extra``: more RunSpec fields (label, base_seed)."""
    if not args.env:
        raise RunError("--env is required (or --resume RUN_DIR to continue a run)")
    env_id = task_env_id(args.env)
    learner = learners.get(getattr(args, "learner", None))
    overrides = config_overrides(args)
    base = pretrained_config(args.init_from, learner) if args.init_from else None
    cfg = make_config(env_id, args.preset, overrides, base, learner)
    steps = args.steps or registry.default_steps(env_id)
    out = Path(args.out) if args.out else Path(default_out(env_id, args.preset, overrides))
    spec = rd.RunSpec(env_id=env_id, config=cfg, seed_ids=seed_ids, steps=steps, out=out,
                      keep_checkpoints=args.keep_checkpoints, progress=not args.no_progress,
                      init_from=args.init_from, preset=args.preset, devices=args.devices,
                      **schedule(args, steps, registry.is_jax_native(env_id)), **extra)
    rd.check_new(spec)  # before anything is built (the run checks again, holding the directory)
    return spec


def run_name(learner: learners.Learner, preset: str) -> str:
    """A preset's directory name: the preset for SQL (``code``), else ``<learner>-<preset>``
    (``ddpg-code``), so that the committed SQL cells keep their paths."""
    return preset if learner.name == learners.DEFAULT else f"{learner.name}-{preset}"


def spec_from_resume(args: argparse.Namespace) -> rd.RunSpec:
    """The spec of the run in ``--resume DIR``: its own settings (schedule, checkpoints
    kept); ``--steps`` changes its length (the loop refuses fewer than it has done), a
    given ``--keep-checkpoints``, ``--devices`` and ``--no-progress`` apply."""
    run_dir = Path(args.resume)
    if not run_dir.is_dir():
        raise RunError(f"cannot resume {run_dir}: no such directory")
    run = rd.read_run(run_dir)
    given = [flag(k) for k in config_overrides(args)] + [
        f for f, v in (("--preset", args.preset), ("--init-from", args.init_from)) if v]
    saved = learners.of_config(rd.read_config(run_dir)).name
    if getattr(args, "learner", None) and args.learner != saved:
        raise RunError(f"{run_dir} is a {saved} run; resume it without --learner (or with "
                       f"--learner {saved})")
    if given:
        raise RunError(f"--resume continues a run with its own settings; drop {', '.join(given)} "
                       "(start a new run to change them)")
    env_id = run["env_id"]
    if args.env and resolve_env_id(args.env) != env_id:
        asked = resolve_env_id(args.env)
        ckpt = rd.latest_checkpoint(run_dir)
        if ckpt is not None:
            meta = sqljax.read_checkpoint_metadata(ckpt)
            info = env_info(asked)
            if (info.obs_dim, info.action_dim) != (int(meta["obs_dim"]), int(meta["action_dim"])):
                raise RunError(
                    f"checkpoint {ckpt} has observation size {meta['obs_dim']} and action size "
                    f"{meta['action_dim']}, but {asked} has observation size {info.obs_dim} and "
                    f"action size {info.action_dim}")
        raise RunError(f"{run_dir} is a run on {env_id}, not {asked}; omit --env to resume it "
                       "(or use --init-from to start a new run on another env)")
    sched = {k: int(run[k]) for k in ("eval_every", "checkpoint_every", "log_every", "eval_episodes")}
    return rd.RunSpec(env_id=env_id, config=rd.read_config(run_dir),
                      seed_ids=tuple(run["seed_ids"]), steps=args.steps or int(run["steps"]),
                      out=run_dir, base_seed=int(run["base_seed"]),
                      keep_checkpoints=(int(run["keep_checkpoints"])
                                        if isinstance(args.keep_checkpoints, Default)
                                        else args.keep_checkpoints),
                      progress=not args.no_progress, preset=run.get("preset"), label=run.get("label"), devices=args.devices,
                      init_from=run.get("init_from"),
                      eval_at_start=bool(run.get("eval_at_start", False)), **sched)


def run_main(body: Callable[[], None], interrupted_hint: str) -> int:
    """A command's exit status: 0 once ``body()`` returns; for a handled error
    (:data:`HANDLED_ERRORS`) its one line and status from :func:`report_error`."""
    try:
        body()
    except HANDLED_ERRORS as e:
        return report_error(e, interrupted_hint)
    return 0
