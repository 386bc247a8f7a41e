"""The robustness study's report (experiments.studies.robustness_report and
robustness_render): display names, the max-entropy against deterministic comparison,
report.md, and the rebuild from the CSV alone, on synthetic rows."""

import json
import shutil

import jax
import numpy as np
import pytest

import sqljax
from experiments import bench
from experiments.studies import robustness
from experiments.studies import robustness_report as rr
from experiments.studies.robustness_render import markdown
from sqljax.envs import perturbations as pt
from sqljax.learners import ddpg

REPS = 200
SETTINGS = {"env_id": "Hopper-v5", "seed": 0, "max_episode_steps": 1000, "push_duration": 0.1,
            "push_gap": [100, 200]}
GRID = {"mass": [0.5, 2.0], "action_noise": [0.1, 0.3]}
EPISODES = 4
#: (cell, learner, unperturbed return, relative return at every perturbed magnitude)
CELLS = (("code", "sql", 1000.0, 0.8), ("ddpg-code", "ddpg", 2000.0, 0.6),
         ("sac-code", "sac", 1500.0, 0.8), ("ddpg-modern", "ddpg", 2500.0, 0.6))


def make_rows(cells=CELLS, seeds=(0, 1, 2, 3), task="Hopper", grid=None, jitter=0.02):
    """Rows as the study writes them (point by point: the unperturbed ones first, then
    each family's magnitudes, every directory in turn), the relative return of a cell
    ``rel`` at every perturbed magnitude give or take ``jitter``."""
    grid = GRID if grid is None else grid
    rng = np.random.default_rng(0)
    points = [(c, "none", None) for c in cells]
    points += [(c, f, m) for f, ms in grid.items() for m in ms for c in cells]
    rows = []
    for (cell, learner, r0, rel), family, m in points:
        for s in seeds:
            for mode in rr.MODES:
                base = r0 * (1 + 0.1 * s) * (1.0 if mode == "deterministic" else 0.9)
                ret = base if family == "none" else base * (rel + jitter * rng.standard_normal())
                rows.append({"learner_dir": f"zoo/{task}/{cell}", "learner": learner, "seed": s, "family": family,
                             "magnitude": "" if m is None else repr(float(m)), "mode": mode,
                             "mean_return": repr(float(ret)), "episodes": EPISODES, "mean_length": "1000.0"})
    return rows


def write_study(out, rows, obs_std=(1.0, 2.0)):
    out.mkdir(parents=True, exist_ok=True)
    robustness.append_rows(out / rr.CSV_FILE, rows)
    (out / rr.SETTINGS_FILE).write_text(json.dumps(SETTINGS, indent=2) + "\n")
    if obs_std is not None:
        (out / rr.OBS_STD_FILE).write_text(json.dumps({"obs_std": list(obs_std)}) + "\n")
    return out


def as_saved(summary):
    """A summary as summary.json holds it."""
    return json.loads(json.dumps(bench.json_safe(summary)))


def test_display_names_follow_the_zoo_cells():
    assert rr.display_name("zoo/Hopper/code", "sql") == "SQL"
    assert rr.display_name("zoo/Hopper/ddpg-code", "ddpg") == "DDPG"
    assert rr.display_name("zoo/Hopper/ddpg-modern/", "ddpg") == "TD3"
    assert rr.display_name("zoo/Hopper/sac-code", "sac") == "SAC"
    # Another directory, or a cell name that does not match its learner: the directory's name.
    assert rr.display_name("runs/tiny", "sql") == "tiny"
    assert rr.display_name("zoo/Hopper/code", "ddpg") == "code"
    dirs = [rr.DirInfo("a/Hopper/code", "a/Hopper/code", "sql", (0,)),
            rr.DirInfo("b/Hopper/code", "b/Hopper/code", "sql", (0,))]
    assert rr.display_names(dirs) == {"a/Hopper/code": "a/Hopper/code", "b/Hopper/code": "b/Hopper/code"}
    assert rr.labels(["a/Hopper/code", "b/Hopper/code"]) == ["a/Hopper/code", "b/Hopper/code"]
    assert rr.labels(["zoo/Hopper/code", "zoo/Hopper/sac-code"]) == ["code", "sac-code"]


def test_summary_names_learners_and_compares_the_groups():
    rows = make_rows()
    dirs = rr.dirs_from_rows(rows)
    summary = rr.build_summary(rows, dirs, GRID, SETTINGS, EPISODES, None, REPS, 0.95)
    learners = summary["learners"]
    assert [e["name"] for e in learners.values()] == ["SQL", "DDPG", "SAC", "TD3"]
    assert [e["group"] for e in learners.values()] == ["max-entropy", "deterministic", "max-entropy",
                                                       "deterministic"]
    mass = learners["code"]["families"]["mass"]["deterministic"]
    assert mass["magnitude"] == [0.5, 1.0, 2.0] and mass["relative"][1]["value"] == 1.0
    # Relative 0.8 at both ends and 1 at the neutral magnitude: area (0.9 * 0.5 + 0.9 * 1) / 1.5.
    assert mass["auc"]["value"] == pytest.approx(0.9, abs=0.02)
    for family in GRID:
        for mode in rr.MODES:
            g = summary["differences"]["groups"][family][mode]
            assert g["members"] == {"max-entropy": ["code", "sac-code"], "deterministic": ["ddpg-code",
                                                                                          "ddpg-modern"]}
            assert g["seeds"] == {"max-entropy": 8, "deterministic": 8}
            assert g["value"] > 0 and g["ci_low"] > 0, g
            assert g["verdict"] == "max-entropy higher (CI of the difference above 0)"
            d = summary["differences"]["first_minus"][family][mode]
            assert set(d) == {"ddpg-code", "sac-code", "ddpg-modern"}
            assert d["ddpg-code"]["verdict"].startswith("SQL higher")
            assert d["sac-code"]["verdict"].startswith("no clear difference")
    # The max-entropy relative curves are 0.2 higher at every perturbed magnitude (both are 1
    # at the neutral one): trapezoids over mass 0.5, 1, 2 give (0.5 * 0.1 + 1 * 0.1) / 1.5 = 0.1,
    # over action noise 0, 0.1, 0.3 (0.1 * 0.1 + 0.2 * 0.2) / 0.3 = 1/6.
    groups = summary["differences"]["groups"]
    assert groups["mass"]["deterministic"]["value"] == pytest.approx(0.1, abs=0.01)
    assert groups["action_noise"]["deterministic"]["value"] == pytest.approx(1 / 6, abs=0.01)
    area = {label: e["families"]["action_noise"]["stochastic"]["auc_per_seed"] for label, e in learners.items()}
    expected = np.mean(area["code"] + area["sac-code"]) - np.mean(area["ddpg-code"] + area["ddpg-modern"])
    assert groups["action_noise"]["stochastic"]["value"] == pytest.approx(expected)
    # Only one group: no group comparison.
    sql_sac = [r for r in rows if r["learner"] != "ddpg"]
    only = rr.build_summary(sql_sac, rr.dirs_from_rows(sql_sac), GRID, SETTINGS, EPISODES, None, REPS, 0.95)
    assert only["differences"]["groups"] == {}
    assert "max-entropy −" not in markdown(only)


def test_report_only_rebuild_gives_the_study_summary(tmp_path):
    rows = make_rows(cells=CELLS[:2], seeds=(0, 1, 2))
    out = write_study(tmp_path / "study", rows)
    # The summary the full command makes of these rows: its directories and grid come
    # from --learners and the magnitudes asked for.
    dirs = [rr.DirInfo(f"zoo/Hopper/{cell}", cell, learner, (0, 1, 2)) for cell, learner, *_ in CELLS[:2]]
    full = as_saved(rr.build_summary(rows, dirs, GRID, SETTINGS, EPISODES, [1.0, 2.0], REPS, 0.95))
    assert robustness.main(["--report-only", "--out", str(out), "--bootstrap-reps", str(REPS)]) == 0
    saved = json.loads((out / rr.SUMMARY_FILE).read_text())
    assert saved == full
    assert (out / rr.PLOT_FILE).stat().st_size > 0
    text = (out / rr.REPORT_FILE).read_text()
    # The report module's own command does the same.
    (out / rr.SUMMARY_FILE).unlink()
    assert rr.main([str(out), "--bootstrap-reps", str(REPS)]) == 0
    assert json.loads((out / rr.SUMMARY_FILE).read_text()) == full
    assert (out / rr.REPORT_FILE).read_text() == text
    # The CSV and the study's settings are untouched.
    assert robustness.read_rows(out / rr.CSV_FILE) == [{k: str(v) for k, v in r.items()} for r in rows]
    assert json.loads((out / rr.SETTINGS_FILE).read_text()) == SETTINGS


def test_rebuild_chooses_learners_and_episodes_and_rejects_bad_input(tmp_path, capsys):
    rows = make_rows(cells=CELLS[:2], seeds=(0, 1))
    out = write_study(tmp_path / "study", rows, obs_std=None)
    summary = rr.rebuild(out, learners=["zoo/Hopper/ddpg-code"], reps=REPS)
    assert list(summary["learners"]) == ["ddpg-code"] and summary["obs_std"] is None
    assert summary["settings"]["magnitudes"] == {f: sorted(ms + [pt.FAMILIES[f].neutral]) for f, ms in GRID.items()}
    more = [{**r, "episodes": 8} for r in rows[:4]]
    robustness.append_rows(out / rr.CSV_FILE, more)
    assert robustness.main(["--report-only", "--out", str(out), "--bootstrap-reps", str(REPS)]) == 2
    assert "choose one with --episodes" in capsys.readouterr().err
    assert rr.main([str(out), "--episodes", str(EPISODES), "--bootstrap-reps", str(REPS)]) == 0
    capsys.readouterr()
    for argv, words in ((["--report-only"], "needs --out"),
                        (["--report-only", "--out", str(tmp_path / "none")], "holds no settings.json"),
                        (["--report-only", "--out", str(out), "--episodes", "4", "--learners", "zoo/Hopper/sac-code"],
                         "no rows of zoo/Hopper/sac-code"),
                        ([], "--learners")):
        assert robustness.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error:") and words in err and err.count("\n") == 1, (argv, err)


def test_report_md_has_the_tables_and_the_reading(tmp_path):
    rows = make_rows()
    out = write_study(tmp_path / "study", rows)
    rr.rebuild(out, reps=REPS)
    text = (out / rr.REPORT_FILE).read_text()
    assert text.startswith("# Robustness on Hopper-v5")
    for words in ("rest on the relative curves", "rest on the absolute returns", "like-for-like comparison",
                  "SQL's sampler against DDPG's OU noise"):
        assert words in text, words
    for family in GRID:
        assert f"## {family}: " in text
    # A table per family and mode, the deterministic (like-for-like) one first.
    assert text.count("### deterministic") == text.count("### stochastic") == len(GRID)
    assert text.index("### deterministic") < text.index("### stochastic")
    header = "| learner | R @0.5 | R @1 | R @2 | rel @0.5 | rel @1 | rel @2 | area [CI] |"
    assert text.count(header) == 2
    table = text[text.index(header):].splitlines()
    assert table[1] == "|---|" + "---:|" * 7
    names = [line.split(" | ")[0] for line in table[2:6]]
    assert names == ["| SQL (4 seeds)", "| DDPG (4 seeds)", "| SAC (4 seeds)", "| TD3 (4 seeds)"]
    cells = table[2].strip("|").split(" | ")
    # At the neutral mass: relative 1, and the IQM of the returns 1000, 1100, 1200, 1300.
    assert cells[5] == "1.00" and cells[2] == "1150"
    assert "- SQL − DDPG: area difference +" in text and "SQL higher (CI of the difference above 0)" in text
    assert "- max-entropy (SQL, SAC; 8 seeds) − deterministic (DDPG, TD3; 8 seeds): area difference +" in text
    assert "| mass | deterministic | max-entropy − deterministic |" in text
    # The text report names the learners too.
    assert "SQL deterministic: relative return" in rr.report(json.loads((out / rr.SUMMARY_FILE).read_text()))


def test_one_learner_a_group_is_the_pair_comparison(tmp_path):
    rows = make_rows(cells=CELLS[:2], seeds=(0, 1, 2))
    out = write_study(tmp_path / "study", rows)
    summary = rr.rebuild(out, reps=REPS)
    g = summary["differences"]["groups"]["mass"]["stochastic"]
    d = summary["differences"]["first_minus"]["mass"]["stochastic"]["ddpg-code"]
    assert {k: g[k] for k in ("value", "ci_low", "ci_high")} == {k: d[k] for k in ("value", "ci_low", "ci_high")}
    text = (out / rr.REPORT_FILE).read_text()
    assert "one learner in each group, the same comparison as the line above" in text
    assert "| max-entropy − deterministic |" not in text


def test_full_command_and_report_only_agree_on_the_same_csv(tmp_path, capsys):
    """Tiny SQL and DDPG learners on Pendulum-v1 in the zoo layout: the study's summary and
    report.md, rebuilt from its CSV, settings.json and obs_std.json without the zoo."""
    zoo = tmp_path / "zoo" / "Pendulum"
    sql_cfg = sqljax.SQLConfig(hidden_sizes=(8,), batch_size=8, value_n_particles=4, kernel_n_particles=4)
    ddpg_cfg = ddpg.DDPGConfig(hidden_sizes=(8,), batch_size=8)
    for i in (0, 1):
        sqljax.export_learner(zoo / "code" / f"seed{i}", sqljax.init(jax.random.key(i), sql_cfg, 3, 1),
                              metadata={"env_id": "Pendulum-v1"})
        sqljax.export_learner(zoo / "ddpg-code" / f"seed{i}", ddpg.init(jax.random.key(i), ddpg_cfg, 3, 1),
                              metadata={"env_id": "Pendulum-v1"})
    out = tmp_path / "study"
    assert robustness.main(["--learners", str(zoo / "code"), str(zoo / "ddpg-code"), "--families", "mass",
                            "obs_noise", "--mass", "0.5", "2", "--obs-noise", "0.5", "--episodes", "2",
                            "--max-episode-steps", "20", "--bootstrap-reps", str(REPS), "--out", str(out),
                            "--no-progress"]) == 0
    assert "SQL deterministic: relative return" in capsys.readouterr().out
    full = json.loads((out / rr.SUMMARY_FILE).read_text())
    assert [e["name"] for e in full["learners"].values()] == ["SQL", "DDPG"]
    assert set(full["differences"]["groups"]) == {"mass", "obs_noise"}
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for name in (rr.CSV_FILE, rr.SETTINGS_FILE, rr.OBS_STD_FILE):
        shutil.copy(out / name, moved / name)
    shutil.rmtree(tmp_path / "zoo")
    assert rr.main([str(moved), "--bootstrap-reps", str(REPS)]) == 0
    assert json.loads((moved / rr.SUMMARY_FILE).read_text()) == full
    assert (moved / rr.REPORT_FILE).read_text() == (out / rr.REPORT_FILE).read_text()
