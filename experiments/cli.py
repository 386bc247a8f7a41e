"""What the command lines share: one-line errors and exit statuses, and SQLConfig's
fields as flags (``--reward-scale 30``, ``--hidden-sizes 256 256``)."""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from typing import Any, Iterable, Mapping

import sqljax
from sqljax.envs.gym_adapter import EnvError
from sqljax.loops.host_loop import NonFiniteError, RunError

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 1
EXIT_INTERRUPTED = 130

#: Errors that mean the user's input was wrong (exit status 2, one line on stderr).
BAD_INPUT_ERRORS = (RunError, EnvError, sqljax.CheckpointError, FileNotFoundError)

CONFIG_HELP: dict[str, str] = {
    "hidden_sizes": "hidden layer sizes of Q and the sampler",
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
}


class BadInput(Exception):
    """A command line argparse rejected."""


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line (``error: ...``, exit 2)
    through :func:`report_error` instead of printing the usage."""

    def error(self, message: str):  # noqa: D401
        raise BadInput(f"{message} (see --help)")


def report_error(e: BaseException, interrupted_hint: str) -> int:
    """Print one `error:` line (or the hint, on Ctrl-C) and return the exit status:
    1 for a diverged run, 130 for an interrupt, 2 for bad input."""
    if isinstance(e, KeyboardInterrupt):
        print(interrupted_hint, file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"error: {e}", file=sys.stderr)
    return EXIT_DIVERGED if isinstance(e, NonFiniteError) else EXIT_BAD_INPUT


#: What a command's main catches and hands to report_error.
HANDLED_ERRORS = (BadInput, *BAD_INPUT_ERRORS, NonFiniteError, KeyboardInterrupt)


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


def add_config_flags(parser: argparse.ArgumentParser, title: str,
                     skip: Iterable[str] = ()) -> argparse._ArgumentGroup:
    """A group with one flag per SQLConfig field (``--reward-scale``; ``--reward_scale``
    works too), stored as ``cfg_<field>``, None unless given. The help shows the
    authors' (``code`` preset) value."""
    group = parser.add_argument_group(title)
    skip = set(skip)
    for f in dataclasses.fields(sqljax.SQLConfig):
        if f.name in skip:
            continue
        default = list(f.default) if isinstance(f.default, tuple) else f.default
        kw: dict[str, Any] = dict(dest=f"cfg_{f.name}", default=None,
                                  help=f"{CONFIG_HELP.get(f.name, f.name)} (code preset: {default})")
        if f.name == "hidden_sizes":
            kw.update(type=int, nargs="+", metavar="H")
        elif f.name == "final_reward_scale":
            kw.update(type=optional_float, metavar="X")
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
    """The SQLConfig fields given on the command line."""
    return {f.name: getattr(args, f"cfg_{f.name}") for f in dataclasses.fields(sqljax.SQLConfig)
            if getattr(args, f"cfg_{f.name}", None) is not None}


def config_error(e: Exception) -> str:
    """SQLConfig's validation message, led by the flag that set the field."""
    m = re.match(r"SQLConfig\.(\w+) ", str(e))
    return f"{flag(m.group(1))}: {e}" if m else str(e)
