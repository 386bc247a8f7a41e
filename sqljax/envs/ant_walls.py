"""The Ant transfer tasks' models: gymnasium's ``ant.xml`` with walls, as XML text.

Gymnasium's model files are read from its package folder (:func:`gymnasium_assets_dir`)
without importing gymnasium, so both simulators build the same model from the same
text: the gymnasium tasks (:mod:`sqljax.envs.ant_tasks`, which writes the text to a
file for ``MujocoEnv``) and the MJX ones (:mod:`sqljax.envs.mjx_ant_tasks`, which loads
it with :func:`sqljax.envs.mjx_locomotion.load_model`).

:func:`build_xml` adds to ``ant.xml``'s world body: walls (static box geoms that collide
with the ant as the floor does), a goal marker (a site: drawn, never colliding) and a
``task_view`` camera. No body, joint or actuator is added, so every task keeps Ant-v5's
observation and action. :func:`hallway_xml`, :func:`umaze_xml` and
:func:`any_direction_xml` are the tasks' models; the geometry (metres) is the constants
below.
"""

from __future__ import annotations

import importlib.util
import os
import xml.etree.ElementTree as ET

__all__ = [
    "HALLWAY_WIDTHS",
    "UMAZE_FREE_SPACE",
    "UMAZE_GOAL",
    "UMAZE_GOAL_RADIUS",
    "UMAZE_GOAL_REWARD",
    "UMAZE_INNER_WALL",
    "any_direction_xml",
    "build_xml",
    "gymnasium_assets_dir",
    "hallway_walls",
    "hallway_xml",
    "umaze_walls",
    "umaze_xml",
]

# Height of every wall (1.5 m; a healthy torso is at most 1.0 m high, so the ant
# cannot get over a wall without the episode ending) and thickness of the hallway
# and outer walls (thick enough that a fast torso cannot tunnel through in one
# 0.01 s physics step).
WALL_HEIGHT = 1.5
WALL_THICKNESS = 1.0
WALL_RGBA = "0.45 0.45 0.55 1"

# Hallway: distance between the inner faces of the two walls.
HALLWAY_WIDTHS = {"wide": 6.0, "narrow": 2.5}
# Hallway walls run along x from HALLWAY_X_RANGE[0] to HALLWAY_X_RANGE[1]; the ends are
# open.  500 m is far more than an ant covers in 1000 steps (50 s).
HALLWAY_X_RANGE = (-10.0, 500.0)

# U-maze (cell size 4 m, the classic 3x3 U): free space is the union of
#   bottom arm x in [-2, 10], y in [-2, 2]   (start at (0, 0))
#   side arm   x in [ 6, 10], y in [-2, 10]
#   top arm    x in [-2, 10], y in [ 6, 10]  (goal at (0, 8))
# i.e. the square [-2, 10] x [-2, 10] minus the inner wall [-2, 6] x [2, 6].
UMAZE_FREE_SPACE = (-2.0, 10.0, -2.0, 10.0)  # xmin, xmax, ymin, ymax
UMAZE_INNER_WALL = (-2.0, 6.0, 2.0, 6.0)  # xmin, xmax, ymin, ymax
UMAZE_GOAL = (0.0, 8.0)
UMAZE_GOAL_RADIUS = 1.0
UMAZE_GOAL_REWARD = 5.0

#: A wall: (name, xmin, xmax, ymin, ymax), from the floor up to WALL_HEIGHT.
Wall = tuple[str, float, float, float, float]


def gymnasium_assets_dir() -> str:
    """The folder of gymnasium's MuJoCo model files, found without importing gymnasium."""
    spec = importlib.util.find_spec("gymnasium")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("the MuJoCo tasks read gymnasium's model files: pip install 'gymnasium[mujoco]'")
    return os.path.join(list(spec.submodule_search_locations)[0], "envs", "mujoco", "assets")


def _box_geom(name: str, xmin: float, xmax: float, ymin: float, ymax: float) -> ET.Element:
    """A static wall occupying [xmin, xmax] x [ymin, ymax] x [0, WALL_HEIGHT]."""
    return ET.Element(
        "geom",
        {
            "name": name,
            "type": "box",
            "pos": f"{(xmin + xmax) / 2} {(ymin + ymax) / 2} {WALL_HEIGHT / 2}",
            "size": f"{(xmax - xmin) / 2} {(ymax - ymin) / 2} {WALL_HEIGHT / 2}",
            # The ant's geoms have contype=1, conaffinity=0 (ant.xml defaults), so the
            # walls need conaffinity=1 to collide with them, like the floor.
            "contype": "1",
            "conaffinity": "1",
            "condim": "3",
            "rgba": WALL_RGBA,
        },
    )


def build_xml(walls: list[Wall], goal=None, camera=None, extent=None) -> str:
    """Gymnasium's ``ant.xml`` with the given ``walls``, goal marker (``((x, y),
    radius)``), camera (``(mode, pos, xyaxes)``, named ``task_view``) and renderer
    ``extent`` (metres) added; the model's XML text."""
    path = os.path.join(gymnasium_assets_dir(), "ant.xml")
    if not os.path.isfile(path):
        raise ValueError(f"no model file {path}: is gymnasium >= 1.0 installed?")
    tree = ET.parse(path)
    root = tree.getroot()
    if extent is not None:
        # MuJoCo scales the renderer's clipping planes with the model's extent; very
        # long walls would otherwise push the near plane metres away from cameras.
        root.insert(0, ET.Element("statistic", {"extent": str(extent), "center": "0 0 0.5"}))
    world = root.find("worldbody")
    for wall in walls:
        world.append(_box_geom(*wall))
    if goal is not None:
        (gx, gy), radius = goal
        # A site: drawn, never collides, adds no body (observation size unchanged).
        world.append(
            ET.Element(
                "site",
                {
                    "name": "goal",
                    "type": "cylinder",
                    "pos": f"{gx} {gy} 0.01",
                    "size": f"{radius} 0.01",
                    "rgba": "0.2 0.8 0.2 0.5",
                },
            )
        )
    if camera is not None:
        # Render with camera_name="task_view" ("trackcom" follows the ant).
        mode, pos, xyaxes = camera
        world.append(
            ET.Element("camera", {"name": "task_view", "mode": mode, "pos": pos, "xyaxes": xyaxes})
        )
    return ET.tostring(tree.getroot(), encoding="unicode")


def any_direction_xml() -> str:
    """The open arena: ``ant.xml`` with a camera that follows the ant."""
    return build_xml([], camera=("trackcom", "0 -6 6", "1 0 0 0 0.707 0.707"))


def hallway_walls(corridor_width: float) -> list[Wall]:
    """The two hallway walls, along x over HALLWAY_X_RANGE, their inner faces at
    ``y = +-corridor_width / 2``."""
    x0, x1 = HALLWAY_X_RANGE
    h, t = float(corridor_width) / 2.0, WALL_THICKNESS
    return [("wall_left", x0, x1, h, h + t), ("wall_right", x0, x1, -h - t, -h)]


def hallway_xml(corridor_width: float) -> str:
    """The hallway ``corridor_width`` metres wide (between the walls' inner faces), with
    a camera that follows the ant."""
    if not corridor_width > 0:
        raise ValueError(f"corridor_width must be > 0 metres, got {corridor_width!r}")
    return build_xml(hallway_walls(corridor_width),
                     camera=("trackcom", "-5 0 5", "0 -1 0 0.707 0 0.707"), extent=10.0)


def outer_walls(free_space: tuple[float, float, float, float], thickness: float) -> list[Wall]:
    """Four walls ``thickness`` m thick enclosing ``free_space`` = (xmin, xmax, ymin, ymax)
    (m): south and north span the corners, west and east fit between them."""
    xmin, xmax, ymin, ymax = free_space
    t = thickness
    return [
        ("wall_south", xmin - t, xmax + t, ymin - t, ymin),
        ("wall_north", xmin - t, xmax + t, ymax, ymax + t),
        ("wall_west", xmin - t, xmin, ymin, ymax),
        ("wall_east", xmax, xmax + t, ymin, ymax),
    ]


def umaze_walls() -> list[Wall]:
    """The U-maze's four outer walls around UMAZE_FREE_SPACE and its inner wall."""
    return [*outer_walls(UMAZE_FREE_SPACE, WALL_THICKNESS), ("wall_inner", *UMAZE_INNER_WALL)]


def umaze_xml(goal_radius: float = UMAZE_GOAL_RADIUS) -> str:
    """The U-maze with its goal marker (``goal_radius`` metres) and a camera above."""
    return build_xml(umaze_walls(), goal=(UMAZE_GOAL, float(goal_radius)),
                     camera=("fixed", "4 -8 18", "1 0 0 0 0.832 0.555"))
