#!/usr/bin/env bash
# Download, into a wheel folder (default .whl/), the wheels that a machine with only a
# CUDA jax stack (jax, jaxlib, flax, optax, chex, orbax-checkpoint, numpy, scipy, ...)
# and no package index needs for `make bench-gpu`: the packages of sqljax's import chain
# missing there, plus the MuJoCo bindings. Versions come from constraints.txt; the
# wheels are for CPython 3.12 on manylinux x86_64, whatever this machine runs.
#
#     scripts/gpu_wheels.sh [WHEEL_DIR]     # default .whl (relative to the repository root)
#     PY_VERSION=3.11 scripts/gpu_wheels.sh /tmp/whl311   # wheels for another Python
#     MUJOCO=0 scripts/gpu_wheels.sh        # without the MuJoCo packages (1 MB, not 26)
#
# PYTHON (default python3) runs pip; the folder must stay under MAX_MB (default 45).
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
WHEEL_DIR=${1:-.whl}
PY_VERSION=${PY_VERSION:-3.12}
MUJOCO=${MUJOCO:-1}
MAX_MB=${MAX_MB:-45}

# Imported by `sqljax` (replay -> flashbax; envs -> gymnasium) and their own
# requirements that a bare jax stack may lack.
PACKAGES=(flashbax gymnasium Farama-Notifications cloudpickle typing_extensions tensorboardX)
# For the MuJoCo environments: mujoco 4 is mujoco-core (the bindings) and mujoco-studio
# (which needs websockets); `import mujoco` needs glfw and, with MUJOCO_GL=egl,
# PyOpenGL; the mjx: tasks need mujoco-mjx and its trimesh (its other requirements,
# absl-py, etils and scipy, come with the jax stack).
MUJOCO_PACKAGES=(mujoco mujoco-core mujoco-studio websockets glfw PyOpenGL mujoco-mjx trimesh)

pinned() {  # NAME -> NAME==VERSION from constraints.txt (names compared case- and -/_-insensitively)
    local want line name
    want=$(echo "$1" | tr 'A-Z_' 'a-z-')
    while IFS= read -r line; do
        name=$(echo "${line%%==*}" | tr 'A-Z_' 'a-z-')
        if [[ "$name" == "$want" ]]; then echo "$line"; return 0; fi
    done < <(grep -E '^[A-Za-z0-9_.-]+==' constraints.txt)
    echo "gpu_wheels: $1 has no pin in constraints.txt" >&2
    return 1
}

download() {  # NAME==VERSION...
    "$PYTHON" -m pip download -q --no-deps --only-binary=:all: \
        --python-version "$PY_VERSION" --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform manylinux1_x86_64 -d "$WHEEL_DIR" "$@"
}

mkdir -p "$WHEEL_DIR"
specs=()
for p in "${PACKAGES[@]}"; do specs+=("$(pinned "$p")"); done
download "${specs[@]}"

if [[ "$MUJOCO" == 1 ]]; then
    specs=()
    for p in "${MUJOCO_PACKAGES[@]}"; do specs+=("$(pinned "$p")"); done
    download "${specs[@]}"
fi

# One version of each package: drop wheels whose pin is not the current one.
shopt -s nullglob
for whl in "$WHEEL_DIR"/*.whl; do
    base=$(basename "$whl")
    name=${base%%-*}; rest=${base#*-}; version=${rest%%-*}
    pin=$(pinned "$name" 2>/dev/null || true)
    if [[ -n "$pin" && "${pin#*==}" != "$version" ]]; then
        echo "gpu_wheels: removing $base (constraints.txt pins ${pin#*==})"; rm -f "$whl"
    fi
done

ls -l "$WHEEL_DIR"
total_kb=$(du -sk "$WHEEL_DIR" | cut -f1)
echo "gpu_wheels: $WHEEL_DIR holds $(awk -v kb="$total_kb" 'BEGIN { printf "%.1f", kb / 1024 }') MB"
if (( total_kb > MAX_MB * 1024 )); then
    echo "gpu_wheels: over ${MAX_MB} MB; try MUJOCO=0" >&2
    exit 1
fi
