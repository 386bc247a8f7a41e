import os
import tempfile

# Tests run on the CPU with deterministic, single-process settings.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MUJOCO_GL", "egl")

# One persistent XLA compilation cache for the whole session, its worker processes and the
# commands the tests start: many tests compile the same small programs, and on a 2-core CPU
# compiling is most of their time. Set before jax is imported, so subprocesses inherit it.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(tempfile.gettempdir(), f"sqljax-tests-xla-cache-{os.getuid()}"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
