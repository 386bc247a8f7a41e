"""The metrics writer of a run: per seed, ``seed{i}/metrics.csv`` (a row per log point)
and TensorBoard events with the same numbers; on resume, the rows after the checkpoint
are dropped (:func:`truncate_csv`). Reading: :func:`sqljax.store.run_dir.read_metrics`."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sqljax.store.run_dir import METRICS_FILE


def truncate_csv(path: Path, step: int, columns: Sequence[str]) -> None:
    """Keep a metrics file's rows up to env step ``step`` (what the checkpoint resumed from
    saw), dropping later rows and a torn last line, under the header ``columns``: cells
    are matched by column name, so a run resumed by a version that logs other metrics
    keeps its history (columns it no longer logs are dropped, new ones start empty)."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    header = rows[0]
    kept = [dict(zip(header, r)) for r in rows[1:]
            if len(r) == len(header) and r[0].isdigit() and int(r[0]) <= step]
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(kept)
    os.replace(tmp, path)


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)) and not math.isfinite(float(v)):
        return "nan" if math.isnan(float(v)) else str(float(v))
    return v


class MetricsLog:
    """Per seed: ``seed{i}/metrics.csv`` (a row per log point, flushed at every write) and
    a TensorBoard event file with the same numbers."""

    def __init__(self, run_dir: Path, seed_ids: Sequence[int], columns: list[str],
                 resume_step: int | None):
        from tensorboardX import SummaryWriter

        self.columns = columns
        self.files, self.writers, self.boards = {}, {}, {}
        for sid in seed_ids:
            d = run_dir / f"seed{sid}"
            d.mkdir(parents=True, exist_ok=True)
            path = d / METRICS_FILE
            if resume_step is not None and path.exists():  # (-1: drop every row)
                truncate_csv(path, resume_step, columns)
            new = not path.exists() or path.stat().st_size == 0
            f = open(path, "a", newline="")
            w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            if new:
                w.writeheader()
            self.files[sid], self.writers[sid] = f, w
            self.boards[sid] = SummaryWriter(logdir=str(d), flush_secs=30,
                                           purge_step=None if resume_step is None else max(resume_step, 0))

    def write(self, rows: dict[int, dict[str, Any]]) -> None:
        """One row per seed id (``rows``: seed id -> column -> value)."""
        for sid, row in rows.items():
            self.writers[sid].writerow({k: _cell(v) for k, v in row.items()})
            step = int(row["step"])
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)) and math.isfinite(v):
                    self.boards[sid].add_scalar(k, v, step)
        for f in self.files.values():
            f.flush()

    def close(self) -> None:
        for f in self.files.values():
            f.close()
        for b in self.boards.values():
            b.close()
