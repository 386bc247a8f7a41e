"""What a training run keeps on disk, apart from the drivers that write it: the run
directory's one format (:mod:`.run_dir`: settings, checkpoints of the stacked carry, the
lock, finding and reading runs and learner exports) and each seed's metrics
(:mod:`.metrics_log`: CSV and TensorBoard). Every command writes through it and every
study reads through it.
"""


class RunError(ValueError):
    """Bad input to a run (directory, checkpoint, sizes, schedule); the message is one line."""
