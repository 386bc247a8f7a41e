"""What a run or benchmark ran on, gathered in one place: devices, the CPU, package
versions, the platform, ``nvidia-smi``. :func:`device_info` is the full record (the
benchmarks'), :func:`hardware` the compact one of a results cell."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import jax


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def nvidia_smi() -> str | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit",
             "--format=csv"], capture_output=True, text=True, timeout=20)
        return out.stdout.strip() or out.stderr.strip()
    except (OSError, subprocess.SubprocessError) as e:
        return f"{type(e).__name__}: {e}"


def _or_error(fn: Callable[[], Any]) -> Any:
    """fn(), or its exception as a string (device details differ between versions)."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001
        return f"{type(e).__name__}: {e}"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def hardware() -> dict[str, Any]:
    """The compact record of a results cell (``cell.json``'s ``hardware``): platform,
    device kind and count, CPU model and cores."""
    dev = jax.devices()[0]
    return {"platform": dev.platform, "device": dev.device_kind, "n_devices": jax.device_count(),
            "cpu": cpu_model(), "cpu_cores": os.cpu_count()}


def device_info() -> dict:
    devices = jax.devices()
    first = devices[0]
    plugins = {name: package_version(name) for name in
               ("jax-cuda12-plugin", "jax-cuda12-pjrt", "jax-cuda13-plugin", "jax-cuda13-pjrt")}
    return {
        "devices": [str(d) for d in devices],
        "device_count": len(devices),
        "platform": first.platform,
        "device_kind": first.device_kind,
        "memory_bytes_limit": _or_error(lambda: (first.memory_stats() or {}).get("bytes_limit")),
        "jax": jax.__version__,
        "jaxlib": package_version("jaxlib"),
        "cuda_plugins": {k: v for k, v in plugins.items() if v is not None},
        "flax": package_version("flax"),
        "optax": package_version("optax"),
        "flashbax": package_version("flashbax"),
        "default_matmul_precision": _or_error(lambda: str(jax.config.jax_default_matmul_precision)),
        "python": platform.python_version(),
        "host": platform.platform(),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "xla_flags": os.environ.get("XLA_FLAGS"),
        "nvidia_smi": nvidia_smi(),
    }
