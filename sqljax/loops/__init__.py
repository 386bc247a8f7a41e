"""Training drivers: thin shells around a learner's ``update`` (any learner of
:mod:`sqljax.learners`, known only through its protocol). ``multi_seed.train(RunSpec)``
trains N >= 1 seeds in lockstep with the gymnasium driver (:mod:`.gym_loop`) or the
compiled loop for JAX-native envs (:mod:`.scan_loop`), writing one run-directory format
(:mod:`sqljax.store.run_dir`). A single run is N = 1.
"""

from sqljax.store import RunError

__all__ = ["NonFiniteError", "RunError", "Stopped"]


class NonFiniteError(RuntimeError):
    """Training produced a non-finite loss or parameter; the message names the update."""


class Stopped(RuntimeError):
    """A run stopped by SIGINT or SIGTERM after writing a checkpoint (``signum``: which)."""

    def __init__(self, signum: int | None, message: str):
        super().__init__(message)
        self.signum = signum
