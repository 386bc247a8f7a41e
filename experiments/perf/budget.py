"""A benchmark run boxed in time: a budget shared out among sections, items started only
while their section has time for them, and a report saved after every item.

The budget counts from this module's import (import it before jax, so that imports and
compilation count too). Each section ends at a set share of the budget; an item starts
only if the previous item of its kind, ``GROWTH`` times longer, fits in what is left of
its section, and the items skipped can be tried again at the end. An item that fails
(e.g. out of memory) is recorded under ``errors`` and the run goes on. A watchdog stops
the process (exit status 3) at the end of the budget, since a compilation cannot be
interrupted; what was measured is saved already.
"""

from __future__ import annotations

import time

PROCESS_START = time.perf_counter()

import gc
import json
import os
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

#: An item is started only if the time left in its section exceeds the last similar
#: item's wall time times this.
GROWTH = 1.25


def log(message: str) -> None:
    print(f"[{time.perf_counter() - PROCESS_START:6.1f}s] {message}", flush=True)


class Clock:
    """Seconds since the process started, against the budget and section deadlines
    (``section_ends``: section -> cumulative share of the budget at which it ends)."""

    def __init__(self, budget_s: float, section_ends: dict[str, float]):
        self.budget_s = float(budget_s)
        self.section_ends = section_ends

    def now(self) -> float:
        return time.perf_counter() - PROCESS_START

    def left(self, section: str) -> float:
        return self.section_ends[section] * self.budget_s - self.now()


class Report:
    """The results, saved as JSON at ``path`` and as ``render(data)`` (markdown) beside it
    after every change, and copied into $OUT as ``{copy_stem}.json`` and ``.md`` when that
    variable is set. ``sections``: the result sections (kind -> empty dict or list)."""

    def __init__(self, path: Path, settings: dict, sections: dict[str, Any],
                 render: Callable[[dict], str], copy_stem: str):
        self.path, self.render, self.copy_stem = path, render, copy_stem
        self.copy_dir = Path(os.environ["OUT"]) if os.environ.get("OUT") else None
        self.data: dict[str, Any] = {"complete": False, "settings": settings, **sections,
                                     "skipped": [], "errors": []}
        self.lock = threading.Lock()

    def save(self) -> None:
        with self.lock:
            self.data["wall_seconds"] = time.perf_counter() - PROCESS_START
            text = json.dumps(self.data, indent=2, default=str) + "\n"
            table = self.render(self.data)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".json.tmp")
            tmp.write_text(text)
            tmp.replace(self.path)
            self.path.with_suffix(".md").write_text(table)
            if self.copy_dir is not None:
                self.copy_dir.mkdir(parents=True, exist_ok=True)
                (self.copy_dir / f"{self.copy_stem}.json").write_text(text)
                (self.copy_dir / f"{self.copy_stem}.md").write_text(table)


class Item(NamedTuple):
    """One measurement: ``measure()`` returns a row for ``report.data[kind]`` (a dict
    section keys it by the row's ``name``, a list section appends it)."""

    name: str
    kind: str
    measure: Callable[[], dict]


class Runner:
    """Runs items within their section's share of the budget, keeps going past errors,
    and keeps the items skipped for lack of time, to try again at the end.
    ``describe(kind, row)``: a log line's worth of a measurement."""

    def __init__(self, report: Report, clock: Clock, describe: Callable[[str, dict], str]):
        self.report, self.clock, self.describe = report, clock, describe
        self.last_wall: dict[str, float] = {}  # per kind: wall seconds of the latest item
        self.skipped: list[Item] = []

    def run(self, section: str, items: Sequence[Item], log_skips: bool = True) -> None:
        for item in items:
            self.run_one(section, item, log_skips)

    def run_one(self, section: str, item: Item, log_skips: bool = True) -> None:
        report = self.report
        estimate_s = self.last_wall.get(item.kind, 0.0) * GROWTH
        left = self.clock.left(section)
        if left < estimate_s or left <= 0:
            self.skipped.append(item)
            self.record_skipped()
            if log_skips:
                log(f"skip {item.name}: {left:.0f} s left in section {section}, "
                    f"needs about {estimate_s:.0f} s")
            return
        t0 = time.perf_counter()
        error = None
        try:
            row = item.measure()
        except Exception as e:  # noqa: BLE001  (out of memory, a compiler error: keep going)
            error = {"item": item.name, "error": f"{type(e).__name__}: {e}"[:2000],
                     "traceback": traceback.format_exc()[-4000:]}
        if error is not None:
            gc.collect()  # the exception's frames are gone: free their device buffers
            report.data["errors"].append(error)
            report.save()
            log(f"error in {item.name}: {error['error'][:300]}")
            return
        row["wall_s"] = self.last_wall[item.kind] = time.perf_counter() - t0
        if isinstance(report.data[item.kind], dict):
            report.data[item.kind][row["name"]] = row
        else:
            report.data[item.kind].append(row)
        report.save()
        log(f"{item.name}: {self.describe(item.kind, row)}")

    def retry_skipped(self, section: str) -> None:
        items, self.skipped = self.skipped, []
        if items:
            log(f"trying again the {len(items)} items skipped for time")
        self.record_skipped()
        self.run(section, items, log_skips=False)
        self.record_skipped()
        if self.skipped:
            log(f"{len(self.skipped)} items skipped for time: "
                + ", ".join(item.name for item in self.skipped))

    def record_skipped(self) -> None:
        self.report.data["skipped"] = [item.name for item in self.skipped]
        self.report.save()


def start_watchdog(report: Report, clock: Clock) -> None:
    """Stop the process at the end of the budget (a compilation cannot be interrupted);
    the results so far are saved already."""
    def watch():
        time.sleep(max(clock.budget_s - clock.now(), 0.0))
        report.data["stopped_by_watchdog"] = True
        try:
            report.save()
        except Exception as e:  # noqa: BLE001  (the last save before the cut stands)
            print(f"could not save: {e}", flush=True)
        print(f"\ntime budget of {clock.budget_s:.0f} s spent: stopping; results so far:\n",
              flush=True)
        print(report.render(report.data), flush=True)
        os._exit(3)

    threading.Thread(target=watch, daemon=True).start()
