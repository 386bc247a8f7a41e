"""Perturbed gymnasium environments for robustness evaluation.

Each perturbation family has a magnitude whose neutral value is the unperturbed task:

* ``mass``: every body's mass and rotational inertia scaled by ``k`` (neutral 1). MuJoCo
  envs: ``model.body_mass`` (nbody,) and ``model.body_inertia`` (nbody, 3), then
  ``mujoco.mj_setConst`` recomputes the quantities derived from them (subtree masses,
  inverse weights, mean inertia). Pendulum-v1 (no MuJoCo model): its point mass ``m``.
* ``friction``: every geom's friction coefficients (sliding, torsional, rolling;
  ``model.geom_friction`` (ngeom, 3), and ``model.pair_friction`` of explicit contact
  pairs) scaled by ``k`` (neutral 1). MuJoCo envs only.
* ``push``: a horizontal force of ``F`` newtons (neutral 0) on the torso's centre of mass
  (``data.xfrc_applied``) for ``push_duration`` seconds (rounded to whole control steps,
  at least one) at control steps drawn per episode (:func:`push_schedule`): gaps between
  pushes uniform in ``push_gap`` control steps, the first after one gap. Its direction is
  +x or -x for models without a free joint (planar robots: Hopper, Walker2d,
  HalfCheetah, Swimmer), a uniform heading in the horizontal plane otherwise (Ant,
  Humanoid). MuJoCo envs only.
* ``action_noise``: Gaussian noise of std ``sigma`` (neutral 0) added to the action in
  the learner's [-1, 1] units, before it is clipped to [-1, 1] and rescaled to the
  env's bounds (so ``sigma`` is a fraction of each action's half range).
* ``obs_noise``: Gaussian noise of std ``sigma * obs_std`` (neutral 0) added to every
  observation the learner sees (those of ``reset`` and ``step``; rewards and the
  simulation are untouched), ``obs_std`` (O,) being a per-dimension std measured over
  unperturbed episodes (:meth:`PerturbedEnv.observation_moments`, :func:`pooled_std`).

:class:`PerturbedEnv` is a :class:`sqljax.envs.gym_adapter.GymEnv` (so
:func:`sqljax.loops.evaluation.evaluate` steps it as any other) that owns its model: the
nominal values are kept when it is built and :meth:`PerturbedEnv.perturb` puts them back
before applying another perturbation, so one env can be re-perturbed between evaluations
and envs never share a change (gymnasium compiles a fresh ``MjModel`` for each env).

Randomness is deterministic given the perturbation's ``seed``: each episode's noise and
push schedule come from ``(family tag, seed, episode seed)``, the episode seed being the
one passed to ``reset`` (every learner evaluated on the same episode seeds meets the same
pushes and noise draws); ``reset()`` without a seed draws the episode seed from a stream
seeded by ``seed``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from sqljax.envs.gym_adapter import EnvError, GymEnv

__all__ = [
    "FAMILIES", "Family", "Perturbation", "PerturbationError", "PerturbedEnv", "default_magnitudes",
    "make_perturbed_env", "pooled_std", "push_schedule", "robot_weight",
]

#: Default seconds a push lasts.
PUSH_DURATION = 0.1
#: Default range of control steps between pushes (both ends included).
PUSH_GAP = (100, 200)
#: Multiples of the robot's weight (total mass times |g|) of the default push grid.
PUSH_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0)

_TAGS = {"push": 0x9A5E, "action_noise": 0xAC71, "obs_noise": 0x0B5E}
_STREAM_TAG = 0x57E4


class PerturbationError(EnvError):
    """A perturbation that cannot be applied: an unknown family, a magnitude out of its
    range, a family the env does not support, or a missing ``obs_std``. One line."""


@dataclasses.dataclass(frozen=True)
class Family:
    """A perturbation family: its neutral magnitude, the least magnitude allowed (and
    whether it may equal it), the default grid (``push``: multiples of the robot's weight,
    see :func:`default_magnitudes`), the unit of the magnitude and whether it needs a
    MuJoCo model."""

    name: str
    neutral: float
    least: float
    least_allowed: bool
    grid: tuple[float, ...]
    unit: str
    mujoco: bool
    description: str


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("mass", 1.0, 0.0, False, (0.5, 0.75, 1.0, 1.5, 2.0), "x nominal", False,
           "every body's mass and inertia scaled by k"),
    Family("friction", 1.0, 0.0, True, (0.25, 0.5, 1.0, 1.5, 2.0), "x nominal", True,
           "every geom's friction coefficients scaled by k"),
    Family("push", 0.0, 0.0, True, PUSH_WEIGHTS, "N", True,
           "horizontal force of F newtons on the torso for push_duration s at drawn times "
           "(default grid: 0, 1/4, 1/2, 1 and 2 times the robot's weight)"),
    Family("action_noise", 0.0, 0.0, True, (0.0, 0.1, 0.2, 0.3, 0.5), "std, [-1, 1] units", False,
           "Gaussian noise of std sigma added to the action before clipping"),
    Family("obs_noise", 0.0, 0.0, True, (0.0, 0.1, 0.2, 0.5, 1.0), "x obs std", False,
           "Gaussian noise of std sigma times the observation's per-dimension std"),
)}


def _family(name: str) -> Family:
    if name not in FAMILIES:
        raise PerturbationError(f"unknown perturbation family {name!r}; choose one of {', '.join(FAMILIES)}")
    return FAMILIES[name]


@dataclasses.dataclass(frozen=True, eq=False)
class Perturbation:
    """One perturbation: ``family`` (a key of :data:`FAMILIES`), ``magnitude`` (k, F in
    newtons, or sigma; see the module docstring), ``seed`` (of its randomness),
    ``obs_std`` (O,) for ``obs_noise``, ``push_duration`` (seconds) and ``push_gap``
    (least and most control steps between pushes) for ``push``. Raises
    :class:`PerturbationError` for an unknown family or a magnitude out of range."""

    family: str
    magnitude: float
    seed: int = 0
    obs_std: np.ndarray | None = None
    push_duration: float = PUSH_DURATION
    push_gap: tuple[int, int] = PUSH_GAP

    def __post_init__(self):
        fam = _family(self.family)
        m = float(self.magnitude)
        low_ok = m >= fam.least if fam.least_allowed else m > fam.least
        if not (math.isfinite(m) and low_ok):
            bound = ">=" if fam.least_allowed else ">"
            raise PerturbationError(f"{self.family} magnitude must be finite and {bound} {fam.least:g}, got {m:g}")
        object.__setattr__(self, "magnitude", m)
        if int(self.seed) < 0:
            raise PerturbationError(f"the perturbation seed must be >= 0, got {self.seed}")
        if not (math.isfinite(self.push_duration) and self.push_duration > 0):
            raise PerturbationError(f"push_duration must be > 0 seconds, got {self.push_duration}")
        lo, hi = (int(g) for g in self.push_gap)
        if not 1 <= lo <= hi:
            raise PerturbationError(f"push_gap must be two control-step counts 1 <= lo <= hi, got {self.push_gap}")
        object.__setattr__(self, "push_gap", (lo, hi))
        if self.obs_std is not None:
            std = np.asarray(self.obs_std, np.float64).reshape(-1)
            if not np.all(np.isfinite(std)) or np.any(std < 0):
                raise PerturbationError("obs_std must be finite and >= 0 in every dimension")
            object.__setattr__(self, "obs_std", std)

    @property
    def neutral(self) -> bool:
        """Whether the magnitude is the family's neutral value (the unperturbed task)."""
        return self.magnitude == FAMILIES[self.family].neutral


def push_schedule(seed: int, episode_seed: int, horizon: int, gap: tuple[int, int] = PUSH_GAP,
                  planar: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The pushes of one episode: ``starts`` (P,) int, the control steps (0-based, < horizon)
    at which pushes begin, and ``directions`` (P, 2), their unit horizontal directions
    (x, y) (planar: (+-1, 0)). Gaps between starts (and before the first) are uniform
    integers in ``gap``. Depends only on (seed, episode_seed, horizon, gap, planar)."""
    rng = np.random.default_rng([_TAGS["push"], int(seed), int(episode_seed)])
    lo, hi = int(gap[0]), int(gap[1])
    n = horizon // lo + 1
    starts = np.cumsum(rng.integers(lo, hi + 1, size=n))
    if planar:
        directions = np.stack([rng.choice([-1.0, 1.0], size=n), np.zeros(n)], axis=1)
    else:
        angle = rng.uniform(0.0, 2.0 * np.pi, size=n)
        directions = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    keep = starts < horizon
    return starts[keep].astype(np.int64), directions[keep]


def _mujoco(unwrapped: Any) -> tuple[Any, Any] | None:
    """(model, data) of a MuJoCo env, None otherwise."""
    model, data = getattr(unwrapped, "model", None), getattr(unwrapped, "data", None)
    if model is None or data is None or not hasattr(model, "body_mass"):
        return None
    return model, data


class PerturbedEnv(GymEnv):
    """A :class:`GymEnv` under one perturbation (or none), changeable between episodes
    with :meth:`perturb`.

    ``reset(seed) -> obs (O,) float32`` and ``step(action (A,) in [-1, 1]) -> (obs, reward,
    terminated, truncated, info)`` as :class:`GymEnv`, with the perturbation applied.
    ``record_observations = True`` accumulates the clean observations' moments
    (:meth:`observation_moments`). ``push_starts`` (P,) and ``push_directions`` (P, 2)
    hold the current episode's push schedule (empty unless pushing).
    """

    def __init__(self, env_id: str, perturbation: Perturbation | None = None,
                 max_episode_steps: int | None = None, render_mode: str | None = None, **make_kwargs: Any):
        super().__init__(env_id, max_episode_steps=max_episode_steps, render_mode=render_mode, **make_kwargs)
        unwrapped = self.env.unwrapped
        self._mj = _mujoco(unwrapped)
        self._nominal: dict[str, np.ndarray] = {}
        if self._mj is not None:
            import mujoco

            model = self._mj[0]
            for name in ("body_mass", "body_inertia", "geom_friction", "pair_friction"):
                self._nominal[name] = np.array(getattr(model, name), copy=True)
            torso = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "torso")
            self._torso = int(torso) if torso >= 0 else min(1, model.nbody - 1)
            self._planar = not bool(np.any(np.asarray(model.jnt_type) == mujoco.mjtJoint.mjJNT_FREE))
            self._dt = float(getattr(unwrapped, "dt", model.opt.timestep))
        elif isinstance(getattr(unwrapped, "m", None), (int, float)):
            self._nominal["m"] = np.float64(unwrapped.m)
        self._changed: str | None = None  # the model family currently applied
        self._pushes = False
        self.perturbation: Perturbation | None = None
        self.record_observations = False
        self.reset_moments()
        self.perturb(perturbation)

    # ------------------------------------------------------------------ perturbation

    def supports(self, family: str) -> str | None:
        """None if ``family`` applies to this env, else why not (one line)."""
        fam = _family(family)
        if self._mj is not None or not (fam.mujoco or fam.name == "mass"):
            return None
        if fam.name == "mass" and "m" in self._nominal:
            return None
        if fam.mujoco:
            return f"the {family} perturbation needs a MuJoCo environment; {self.env_id} has no MuJoCo model"
        return f"the mass perturbation needs a MuJoCo model or a pendulum's mass m; {self.env_id} has neither"

    def perturb(self, perturbation: Perturbation | None) -> None:
        """Undo the current perturbation (the model's nominal values back) and apply
        ``perturbation`` (None: the unperturbed env). Takes effect at once for the model
        families, at the next ``reset`` for the pushes' schedule and the noise streams.
        Raises :class:`PerturbationError` if the env cannot take it."""
        if perturbation is not None:
            why = self.supports(perturbation.family)
            if why is not None:
                raise PerturbationError(why)
            if perturbation.family == "obs_noise" and not perturbation.neutral:
                std = perturbation.obs_std
                if std is None or std.shape != (self.obs_dim,):
                    got = "none" if std is None else f"shape {std.shape}"
                    raise PerturbationError(f"obs_noise on {self.env_id} needs obs_std of shape "
                                            f"({self.obs_dim},), got {got}")
        self._restore()
        if self._pushes:  # a push under way stops now, not at the next reset
            self._mj[1].xfrc_applied[self._torso, :2] = 0.0
        self.perturbation = perturbation
        p = perturbation
        if p is not None and not p.neutral and p.family in ("mass", "friction"):
            self._scale_model(p.family, p.magnitude)
        seed = 0 if p is None else int(p.seed)
        self._stream = np.random.default_rng([_STREAM_TAG, seed])
        self._rng = np.random.default_rng([_TAGS.get(p.family if p else "", 0), seed])
        self._pushes = p is not None and p.family == "push" and not p.neutral
        if self._pushes:
            self._push_steps = max(1, int(round(p.push_duration / self._dt)))
        self.push_starts = np.zeros(0, np.int64)
        self.push_directions = np.zeros((0, 2))
        self._force = np.zeros((0, 2))
        self._t = 0

    def _restore(self) -> None:
        if self._changed is None:
            return
        if self._mj is None:
            self.env.unwrapped.m = float(self._nominal["m"])
        else:
            model, data = self._mj
            for name in ("body_mass", "body_inertia", "geom_friction", "pair_friction"):
                getattr(model, name)[...] = self._nominal[name]
            if self._changed == "mass":
                import mujoco

                mujoco.mj_setConst(model, data)
        self._changed = None

    def _scale_model(self, family: str, k: float) -> None:
        if self._mj is None:  # Pendulum's point mass (its inertia m l^2 / 3 follows)
            self.env.unwrapped.m = float(self._nominal["m"]) * k
        elif family == "mass":
            import mujoco

            model, data = self._mj
            model.body_mass[...] = self._nominal["body_mass"] * k
            model.body_inertia[...] = self._nominal["body_inertia"] * k
            mujoco.mj_setConst(model, data)  # subtree masses, inverse weights, mean inertia
        else:
            model = self._mj[0]
            model.geom_friction[...] = self._nominal["geom_friction"] * k
            model.pair_friction[...] = self._nominal["pair_friction"] * k
        self._changed = family

    # ------------------------------------------------------------------ stepping

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start an episode (``seed``: the env's reset seed, which also fixes this episode's
        pushes and noise). Returns the observation (O,) float32 the learner sees."""
        obs = super().reset(seed=seed)
        p = self.perturbation
        episode = int(seed) if seed is not None else int(self._stream.integers(2 ** 32))
        if p is not None and p.family in _TAGS:
            self._rng = np.random.default_rng([_TAGS[p.family], int(p.seed), episode])
        self._t = 0
        if self._pushes:
            horizon = self.time_limit or 1000
            self.push_starts, self.push_directions = push_schedule(p.seed, episode, horizon, p.push_gap,
                                                                   self._planar)
            self._force = np.zeros((horizon, 2))
            for start, direction in zip(self.push_starts, self.push_directions):
                self._force[start:start + self._push_steps] = p.magnitude * direction
        self._record(obs)
        return self._observe(obs)

    def step(self, action: np.ndarray):
        """One control step: ``action`` (A,) in the learner's [-1, 1] units (plus the action
        noise, then clipped and rescaled); during a push the force (newtons) acts on the
        torso for the whole step. Returns (obs (O,) float32 as the learner sees it, reward,
        terminated, truncated, info)."""
        p = self.perturbation
        a = np.asarray(action, np.float64).reshape(-1)
        if p is not None and p.family == "action_noise" and not p.neutral:
            a = a + p.magnitude * self._rng.standard_normal(a.shape)
        if self._pushes:
            force = self._force[self._t] if self._t < len(self._force) else (0.0, 0.0)
            self._mj[1].xfrc_applied[self._torso, :2] = force
        obs, reward, terminated, truncated, info = super().step(a)
        self._t += 1
        self._record(obs)
        return self._observe(obs), reward, terminated, truncated, info

    def _observe(self, obs: np.ndarray) -> np.ndarray:
        p = self.perturbation
        if p is None or p.family != "obs_noise" or p.neutral:
            return obs
        noise = p.magnitude * p.obs_std * self._rng.standard_normal(obs.shape)
        return (obs + noise).astype(np.float32)

    # ------------------------------------------------------------------ observation statistics

    def reset_moments(self) -> None:
        """Forget the recorded observations."""
        self._n, self._mean, self._m2 = 0, np.zeros(self.obs_dim), np.zeros(self.obs_dim)

    def _record(self, obs: np.ndarray) -> None:
        if not self.record_observations:
            return
        x = np.asarray(obs, np.float64)
        self._n += 1
        d = x - self._mean
        self._mean += d / self._n
        self._m2 += d * (x - self._mean)

    def observation_moments(self) -> tuple[int, np.ndarray, np.ndarray]:
        """(count, mean (O,), sum of squared deviations (O,)) of the clean observations
        recorded since :meth:`reset_moments` (resets' and steps' alike)."""
        return self._n, self._mean.copy(), self._m2.copy()


def pooled_std(moments: Iterable[tuple[int, np.ndarray, np.ndarray]]) -> np.ndarray:
    """Per-dimension std (O,) of all observations behind several
    :meth:`PerturbedEnv.observation_moments` (population std, the moments combined
    exactly). Raises ValueError if none were recorded."""
    n, mean, m2 = 0, None, None
    for k, mu, s2 in moments:
        if k == 0:
            continue
        if mean is None:
            n, mean, m2 = k, np.array(mu, np.float64), np.array(s2, np.float64)
            continue
        total = n + k
        d = mu - mean
        mean = mean + d * (k / total)
        m2 = m2 + s2 + d * d * (n * k / total)
        n = total
    if mean is None:
        raise ValueError("no observations were recorded")
    return np.sqrt(m2 / n)


def make_perturbed_env(env_id: str, family: str | None = None, magnitude: float | None = None, seed: int = 0, *,
                       obs_std: Sequence[float] | np.ndarray | None = None, push_duration: float = PUSH_DURATION,
                       push_gap: tuple[int, int] = PUSH_GAP, max_episode_steps: int | None = None,
                       render_mode: str | None = None, **make_kwargs: Any) -> PerturbedEnv:
    """A :class:`PerturbedEnv` of ``env_id`` under ``family`` at ``magnitude`` (default the
    family's neutral value; ``family=None``: unperturbed), its randomness seeded by
    ``seed``. ``obs_std`` (O,): the observation std that ``obs_noise`` scales;
    ``push_duration`` (s) and ``push_gap`` (control steps) shape the pushes; the rest
    as :func:`sqljax.envs.gym_adapter.make_env`."""
    perturbation = None
    if family is not None:
        fam = _family(family)
        perturbation = Perturbation(fam.name, fam.neutral if magnitude is None else magnitude, seed,
                                    None if obs_std is None else np.asarray(obs_std, np.float64),
                                    push_duration, tuple(push_gap))
    env = PerturbedEnv(env_id, None, max_episode_steps=max_episode_steps, render_mode=render_mode, **make_kwargs)
    try:
        env.perturb(perturbation)
    except PerturbationError:
        env.close()
        raise
    return env


def robot_weight(env: GymEnv) -> float | None:
    """Total mass times |gravity| (newtons) of a MuJoCo env's model, None for other envs."""
    mj = _mujoco(env.env.unwrapped)
    if mj is None:
        return None
    model = mj[0]
    return float(np.sum(model.body_mass) * np.linalg.norm(model.opt.gravity))


def _two_figures(x: float) -> float:
    return 0.0 if x == 0 else float(f"{x:.2g}")


def default_magnitudes(family: str, env: GymEnv | None = None) -> tuple[float, ...]:
    """The default grid of ``family`` (neutral value included). ``push``: newtons,
    :data:`PUSH_WEIGHTS` times the robot's weight (:func:`robot_weight` of ``env``,
    rounded to two significant figures), so that a push of 1 weight for the default
    0.1 s changes the robot's speed by about 1 m/s on every task."""
    fam = _family(family)
    if fam.name != "push":
        return fam.grid
    weight = robot_weight(env) if env is not None else None
    if weight is None:
        raise PerturbationError("the push grid is in multiples of the robot's weight, which needs a MuJoCo env")
    return tuple(_two_figures(c * weight) for c in PUSH_WEIGHTS)
