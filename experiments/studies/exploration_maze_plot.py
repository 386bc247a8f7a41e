"""A top-down picture of the Ant two-passage maze (``sqljax/AntTwoPassageMaze-v0``):
walls, the barrier, start, target, the reward bump's contours and the dead-end circle
(radius :func:`sqljax.envs.exploration_tasks.dead_end_distance`, 3.25 m) around the target.

    python -m experiments.studies.exploration_maze_plot              # -> docs/exploration_maze.png
    python -m experiments.studies.exploration_maze_plot --out maze.png
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from experiments import plots
from sqljax.envs import exploration_tasks as et

DEFAULT_OUT = Path("docs/exploration_maze.png")


def draw_maze(ax, bump: bool = True):
    """Walls, barrier, dead-end circle, start and target on ``ax`` (metres, equal
    aspect); with ``bump`` the reward bump's filled contours too (returned, else None)."""
    from matplotlib.patches import Circle, Rectangle

    xmin, xmax, ymin, ymax = et.MAZE_FREE_SPACE
    t = et.MAZE_WALL_THICKNESS
    filled = None
    if bump:  # scale * exp(-d^2 / (2 sigma^2)), over the whole arena
        gx, gy = np.meshgrid(np.linspace(xmin - t, xmax + t, 300), np.linspace(ymin - t, ymax + t, 240))
        values = et.target_bump(np.stack([gx, gy], axis=-1))
        filled = ax.contourf(gx, gy, values, levels=np.linspace(0, et.MAZE_BUMP_SCALE, 11),
                             cmap="Greens", alpha=0.55)
    for name, x0, x1, y0, y1 in et.maze_walls():
        barrier = name == "barrier"
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, facecolor="#c0392b" if barrier else "#6b6b80",
                               edgecolor="black", lw=0.8, zorder=3, label="barrier" if barrier else None))
    d = et.dead_end_distance()
    ax.add_patch(Circle(et.MAZE_TARGET, d, fill=False, ls="--", lw=1.5, color="#8e44ad", zorder=4,
                        label=f"dead-end distance {d:.2f} m"))
    closest = (et.MAZE_BARRIER[0] - et.TORSO_RADIUS, et.MAZE_TARGET[1])
    ax.plot(*closest, "x", color="#8e44ad", ms=8, mew=2, zorder=5)
    ax.plot(*et.MAZE_START, "o", color="#2471a3", ms=10, zorder=5, label="start")
    ax.plot(*et.MAZE_TARGET, "*", color="#d4ac0d", mec="black", ms=16, zorder=5, label="target")
    ax.set_xlim(xmin - t - 0.3, xmax + t + 0.3)
    ax.set_ylim(ymin - t - 0.3, ymax + t + 0.3)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    return filled


def plot_maze(out: str | Path = DEFAULT_OUT) -> Path:
    """Draw the maze from above (axes in metres) into ``out``; returns the path."""
    plt = plots.pyplot()

    fig, ax = plt.subplots(figsize=(7.5, 6.0))
    filled = draw_maze(ax)
    fig.colorbar(filled, ax=ax, shrink=0.8, label=f"target reward per step (sigma = {et.MAZE_BUMP_WIDTH:g} m)")
    xmin, xmax, ymin, ymax = et.MAZE_FREE_SPACE
    ax.plot(*zip(et.MAZE_START, et.MAZE_TARGET), ":", color="black", lw=1, zorder=4, label="straight line")
    upper_y = (et.MAZE_DIVIDER[3] + ymax) / 2
    lower_y = (ymin + et.MAZE_DIVIDER[2]) / 2
    passage_x = (et.MAZE_DIVIDER[0] + et.MAZE_DIVIDER[1]) / 2
    upper_x = (et.MAZE_DIVIDER[0] + et.MAZE_BARRIER[0]) / 2
    ax.text(upper_x, upper_y + 1.0, "upper passage\n(dead end)", ha="center", va="center", fontsize=8, zorder=6)
    ax.text(passage_x, lower_y, "lower passage", ha="center", va="center", fontsize=9, zorder=6)
    ax.set_title("sqljax/AntTwoPassageMaze-v0 from above")
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.12), ncol=3, fontsize=8, frameon=False)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.studies.exploration_maze_plot",
                                description="Draw the two-passage maze from above.")
    p.add_argument("--out", default=str(DEFAULT_OUT), help=f"PNG path (default {DEFAULT_OUT})")
    print(plot_maze(p.parse_args(argv).out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
