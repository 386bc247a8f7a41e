"""Training drivers: thin shells around ``sqljax.update``.

``multi_seed.train(RunSpec)`` trains N >= 1 seeds in lockstep on any environment: the
gymnasium driver (:mod:`sqljax.loops.gym_loop`) or the compiled ``lax.scan`` loop for
JAX-native environments (:mod:`sqljax.loops.scan_loop`); both write one run-directory
format (:mod:`sqljax.loops.run_dir`). A single run is N = 1.
"""


class RunError(ValueError):
    """Bad input to a run (directory, checkpoint, sizes, schedule); the message is one line."""


class NonFiniteError(RuntimeError):
    """Training produced a non-finite loss or parameter; the message names the update."""
