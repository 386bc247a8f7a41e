"""sqljax: Soft Q-Learning (Haarnoja, Tang, Abbeel, Levine, ICML 2017) in JAX.

Pure functions composed into one `update(state, batch)` that `jax.jit` and `jax.vmap`
compile as is. Environments live in `sqljax.envs` (gymnasium is imported only there).
"""

from sqljax import replay
from sqljax.checkpoint import (
    CheckpointError,
    export_learner,
    load_checkpoint,
    load_extra,
    read_checkpoint_metadata,
    save_checkpoint,
)
from sqljax.config import PRESETS, TASK_REWARD_SCALES, SQLConfig, task_reward_scale
from sqljax.kernel import KernelOutput, median_bandwidth, rbf_kernel
from sqljax.networks import QFunction, Sampler, q_apply, sampler_apply
from sqljax.svgd import sampler_svgd_gradient, squash_correction, svgd_direction, target_score
from sqljax.update import (
    UPDATE_METRICS,
    Batch,
    SQLState,
    finetune_state,
    init,
    noise_bank_size_at,
    q_values,
    reward_scale_at,
    sample_actions,
    td_loss,
    td_target,
    update,
    update_target,
)
from sqljax.value import soft_value, soft_value_from_samples, uniform_actions

__version__ = "0.1.0"

__all__ = [
    "Batch", "CheckpointError", "KernelOutput", "PRESETS", "QFunction", "SQLConfig",
    "SQLState", "Sampler", "TASK_REWARD_SCALES", "UPDATE_METRICS", "export_learner", "finetune_state", "init", "load_checkpoint",
    "load_extra", "median_bandwidth", "noise_bank_size_at", "q_apply", "q_values",
    "rbf_kernel", "read_checkpoint_metadata", "replay", "reward_scale_at", "sample_actions",
    "sampler_apply", "sampler_svgd_gradient", "save_checkpoint", "soft_value",
    "soft_value_from_samples", "squash_correction", "svgd_direction", "target_score",
    "task_reward_scale", "td_loss", "td_target", "uniform_actions", "update",
    "update_target",
]

# Last, once the modules above are loaded: importing the environments makes the gymnasium
# ids sqljax/MultiGoal-v0 and the Ant transfer tasks known to gymnasium, whenever it is
# imported (sqljax.envs; gymnasium itself is not imported here).
from sqljax import envs

__all__ += ["envs"]
