import os

# Tests run on the CPU with deterministic, single-process settings.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MUJOCO_GL", "egl")
