"""Skill transfer (experiments/studies/transfer.py, fine-tuning in sqljax/loops/multi_seed.py):
pretrained learners load into tasks of the same sizes and are refused clearly by others,
fine-tuning starts from the pretrained parameters with fresh optimisers, the schedules
reach their exact values inside a real run, and a short study writes its summary and
figure.

One tiny study (hidden 32, batch 32, 4 particles, 120 steps, 2 seeds, one task) serves
most tests. Pretraining and the scratch runs share one compiled program (same config,
same replay size); fine-tuning compiles a second one.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sqljax
from experiments import bench
from experiments.studies import transfer
from sqljax import seeding
from sqljax.loops import RunError
from sqljax.loops import multi_seed as ms
from sqljax.store import run_dir as rd

STEPS = 120
LEARNING_STARTS = 40
ANNEAL = 40  # updates
BANK = 4
TASK = "AntHallwayWide-v0"
TINY = ["--hidden-sizes", "32", "--batch-size", "32", "--value-n-particles", "4",
        "--kernel-n-particles", "4", "--learning-starts", str(LEARNING_STARTS),
        "--max-episode-steps", "30", "--replay-size", "1000"]
RUN = ["--eval-every", "60", "--eval-episodes", "1", "--log-every", "1", "--checkpoint-every", "30",
       "--keep-checkpoints", "10", "--bootstrap-reps", "1000", "--no-progress"]
STUDY = (["--pretrain-steps", str(STEPS), "--finetune-steps", str(STEPS), "--seeds", "2",
          "--tasks", "AntHallwayWide", "--anneal-steps", str(ANNEAL), "--noise-bank-size", str(BANK)]
         + TINY + RUN)


def leaves_equal(a, b) -> bool:
    return all(np.array_equal(np.asarray(x), np.asarray(y))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    lines = [ln for ln in err if ln.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("transfer") / "study"
    assert transfer.main(STUDY + ["--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Untrained single learners saved as checkpoints: Ant-sized (105, 8), Pendulum-sized
    (3, 1) and MultiGoal-sized (2, 2)."""
    root = tmp_path_factory.mktemp("ckpts")
    cfg = sqljax.SQLConfig(hidden_sizes=(32,), batch_size=32, value_n_particles=4,
                           kernel_n_particles=4, reward_scale=10.0)
    paths = {}
    for name, (o, a) in {"ant": (105, 8), "pendulum": (3, 1), "multigoal": (2, 2)}.items():
        paths[name] = sqljax.save_checkpoint(root / name, sqljax.init(jax.random.PRNGKey(1), cfg, o, a))
    return paths


def ckpt_at(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"step_{step:09d}"


# --------------------------------------------------------------------- loading pretrained learners

def test_pretrained_loads_into_a_task_of_the_same_sizes(study, checkpoints):
    # A multi-seed pretraining run pairs the seeds: seed i from pretrained seed i.
    pre = ms.load_seed_states(study / "pretrain")
    got = ms.load_init_states(study / "pretrain", (1, 0), "sqljax/AntUMaze-v0", 105, 8)
    assert leaves_equal(seeding.unstack(got, 0), seeding.unstack(pre, 1))
    assert leaves_equal(seeding.unstack(got, 1), seeding.unstack(pre, 0))
    with pytest.raises(RunError, match=r"holds seeds \[0, 1\], not seed\(s\) \[5\]"):
        ms.load_init_states(study / "pretrain", (0, 5), "sqljax/AntUMaze-v0", 105, 8)
    # A single learner starts every seed.
    one = sqljax.load_checkpoint(checkpoints["ant"])
    got = ms.load_init_states(checkpoints["ant"], (0, 1, 2), "sqljax/AntUMaze-v0", 105, 8)
    assert got.step.shape == (3,)
    for i in range(3):
        assert leaves_equal(seeding.unstack(got, i).sampler_params, one.sampler_params)


def test_a_directory_of_seed_learners_pairs_the_seeds(study, tmp_path, capsys):
    # The zoo layout (seed{i}/ learner exports): seed i starts from seed{i}'s learner.
    pre = ms.load_seed_states(study / "pretrain")
    zoo = tmp_path / "zoo"
    for i in (0, 1):
        sqljax.export_learner(zoo / f"seed{i}", seeding.unstack(pre, i))
    got = ms.load_init_states(zoo, (1, 0), "sqljax/AntUMaze-v0", 105, 8)
    for i, want in ((0, 1), (1, 0)):
        mine, theirs = seeding.unstack(got, i), seeding.unstack(pre, want)
        assert leaves_equal(mine.sampler_params, theirs.sampler_params)
        assert leaves_equal(mine.q_params, theirs.q_params)
    assert not leaves_equal(seeding.unstack(got, 0).q_params, seeding.unstack(got, 1).q_params)
    with pytest.raises(RunError, match=r"holds seeds \[0, 1\], not seed\(s\) \[2\]"):
        ms.load_init_states(zoo, (0, 2), "sqljax/AntUMaze-v0", 105, 8)
    assert rd.find_checkpoint(zoo) == zoo / "seed0"  # its config and sizes: the first seed's
    assert transfer.main(["--pretrained", str(zoo), "--seeds", "3", "--out", str(tmp_path / "never"),
                          "--no-progress"]) == 2
    assert "holds seeds [0, 1], not seed(s) [2]" in one_error_line(capsys)


def test_seed_learners_of_different_configs_fail_in_one_line(study, tmp_path, capsys):
    # Seeds stacked from one directory must share a config: seed2 pretrained with another
    # reward scale than seed0 is a mistake in assembling the arm, not something to average.
    pre = ms.load_seed_states(study / "pretrain")
    zoo = tmp_path / "mixed"
    first = seeding.unstack(pre, 0)
    sqljax.export_learner(zoo / "seed0", first)
    sqljax.export_learner(zoo / "seed1", seeding.unstack(pre, 1))
    other = first.replace(config=first.config.replace(reward_scale=first.config.reward_scale * 2,
                                                      replay_size=first.config.replay_size + 1))
    sqljax.export_learner(zoo / "seed2", other)
    got = ms.load_init_states(zoo, (0, 1), "sqljax/AntUMaze-v0", 105, 8)  # seeds 0 and 1 agree
    assert got.step.shape == (2,)
    want = (rf"seed2's learner was trained with replay_size={first.config.replay_size + 1}, "
            rf"seed0's with replay_size={first.config.replay_size} \(1 more field\(s\) differ\)")
    with pytest.raises(RunError, match=want):
        ms.load_init_states(zoo, (0, 1, 2), "sqljax/AntUMaze-v0", 105, 8)
    out = tmp_path / "never"
    assert transfer.main(["--pretrained", str(zoo), "--seeds", "3", "--out", str(out),
                          "--no-progress"]) == 2
    line = one_error_line(capsys)
    assert "seed2's learner was trained with" in line and "one configuration" in line, line


@pytest.mark.parametrize("name, sizes", [("pendulum", "observation size 3 and action size 1"),
                                         ("multigoal", "observation size 2 and action size 2")])
def test_mismatched_pretrained_fails_in_one_line(checkpoints, name, sizes, tmp_path, capsys):
    with pytest.raises(RunError, match=sizes):
        ms.load_init_states(checkpoints[name], (0, 1), "sqljax/AntHallwayWide-v0", 105, 8)
    out = tmp_path / "never"
    assert transfer.main(["--pretrained", str(checkpoints[name]), "--out", str(out),
                          "--tasks", "AntUMaze", "--no-progress"]) == 2
    line = one_error_line(capsys)
    assert sizes in line and "observation size 105 and action size 8" in line, line
    assert "sqljax/AntUMaze-v0" in line and not out.exists()
    # The same through the benchmark's --init-from.
    assert bench.main(["--env", "AntHallwayNarrow", "--seeds", "1", "--steps", "10", "--init-from",
                       str(checkpoints[name]), "--out", str(out), "--no-progress"]) == 2
    line = one_error_line(capsys)
    assert sizes in line and "AntHallwayNarrow" in line and not out.exists()


def test_pretrained_run_must_hold_the_seeds(study, tmp_path, capsys):
    assert transfer.main(["--pretrained", str(study / "pretrain"), "--seeds", "3", "--out",
                          str(tmp_path / "never"), "--no-progress"]) == 2
    assert "holds seeds [0, 1], not seed(s) [2]" in one_error_line(capsys)
    assert not (tmp_path / "never").exists()


def test_other_bad_input_is_one_line(checkpoints, tmp_path, capsys):
    cases = [
        (["--pretrained", str(checkpoints["ant"]), "--hidden-sizes", "64"], ["--hidden-sizes", "(32,)"]),
        (["--pretrained", str(tmp_path)], ["neither an sqljax checkpoint, a run directory nor"]),
        (["--tasks", "Pendulum"], ["observation size 3", "Pendulum-v1"]),
        (["--tasks", "AntHalway"], ["unknown environment", "AntHallway"]),
        (["--seeds", "0"], ["--seeds", ">= 1"]),
        (["--anneal-fraction", "1.5"], ["--anneal-fraction", "(0, 1]"]),
        (["--batch-size", "0"], ["--batch-size", ">= 1"]),
        (["--final-reward-scale", "-3"], ["--final-reward-scale"]),
    ]
    for argv, words in cases:
        assert transfer.main(argv + ["--out", str(tmp_path / "never"), "--no-progress"]) == 2, argv
        line = one_error_line(capsys)
        for w in words:
            assert w in line, (argv, line)
    assert not (tmp_path / "never").exists()


# --------------------------------------------------------------------- fine-tuning starts right

def test_finetuned_learners_start_from_the_pretrained_parameters(study):
    pre = ms.load_seed_states(study / "pretrain")  # the end of pretraining
    start = ms.load_seed_states(ckpt_at(study / TASK / "finetune", 30))  # before the first update
    assert start.step.tolist() == [0, 0]
    for i in (0, 1):
        p, f = seeding.unstack(pre, i), seeding.unstack(start, i)
        assert leaves_equal(f.q_params, p.q_params)
        assert leaves_equal(f.target_q_params, p.q_params)
        assert leaves_equal(f.sampler_params, p.sampler_params)
        # fresh optimisers: zero step count and zero moments
        for opt in (f.q_opt_state, f.sampler_opt_state):
            assert int(opt[0].count) == 0
            assert all(not np.any(np.asarray(x)) for x in jax.tree.leaves((opt[0].mu, opt[0].nu)))
        assert f.noise_bank.shape == (BANK, 8)
    assert not leaves_equal(seeding.unstack(start, 0).sampler_params, seeding.unstack(start, 1).sampler_params)
    # the pretrained learners had trained (so the copy is not of a fresh init)
    assert pre.step.tolist() == [STEPS - LEARNING_STARTS + 1] * 2
    scratch = ms.load_seed_states(ckpt_at(study / TASK / "scratch", 30))
    assert not leaves_equal(scratch.sampler_params, pre.sampler_params)


# --------------------------------------------------------------------- schedules inside the run

def test_reward_scale_schedule_reaches_exact_values(study):
    cfg = sqljax.SQLConfig.from_dict(json.loads((study / TASK / "finetune" / "config.json").read_text()))
    assert (cfg.reward_scale, cfg.final_reward_scale, cfg.anneal_steps, cfg.noise_bank_size) == (
        10.0, 1000.0, ANNEAL, BANK)
    for seed in (0, 1):
        rows = {int(r["step"]): r for r in rd.read_metrics(study / TASK / "finetune", seed)}
        assert rows[LEARNING_STARTS - 1]["reward_scale"] == ""  # no update yet
        for t in range(LEARNING_STARTS, STEPS + 1):
            # the row of env step t holds update t - L + 1, made at state.step = t - L
            assert int(rows[t]["updates"]) == t - LEARNING_STARTS + 1
            want = float(sqljax.reward_scale_at(cfg, jnp.asarray(t - LEARNING_STARTS)))
            assert float(rows[t]["reward_scale"]) == pytest.approx(want, rel=1e-6)
        start = LEARNING_STARTS
        assert float(rows[start]["reward_scale"]) == pytest.approx(10.0, rel=1e-6)
        assert float(rows[start + ANNEAL // 2]["reward_scale"]) == pytest.approx(100.0, rel=1e-5)
        assert float(rows[start + ANNEAL]["reward_scale"]) == pytest.approx(1000.0, rel=1e-6)
        assert float(rows[STEPS]["reward_scale"]) == pytest.approx(1000.0, rel=1e-6)
        scratch = rd.read_metrics(study / TASK / "scratch", seed)
        assert {float(r["reward_scale"]) for r in scratch if r["reward_scale"]} == {10.0}


_sample_many = jax.jit(jax.vmap(sqljax.sample_actions, in_axes=(None, None, 0)))


def _distinct_actions(state: sqljax.SQLState, obs: jax.Array, n: int = 64) -> np.ndarray:
    acts = _sample_many(state, obs, jax.random.split(jax.random.PRNGKey(3), n))
    return np.unique(np.round(np.asarray(acts), 6), axis=0)


def test_noise_bank_shrinks_inside_the_run(study):
    obs = jnp.linspace(-1.0, 1.0, 105)
    run = study / TASK / "finetune"
    # env step 60: 21 updates done, K_xi = round(4 + 21/40 * (1 - 4)) = 2
    mid = jax.tree.map(jnp.asarray, seeding.unstack(ms.load_seed_states(ckpt_at(run, 60)), 0))
    assert int(mid.step) == 21 and int(sqljax.noise_bank_size_at(mid.config, mid.step)) == 2
    bank_actions = [np.asarray(sqljax.sampler_apply(mid.sampler_params, mid.config.hidden_sizes, obs,
                                                    mid.noise_bank[j])) for j in range(BANK)]
    got = _distinct_actions(mid, obs)
    assert len(got) == 2
    for a in got:
        assert any(np.allclose(a, bank_actions[j], atol=1e-5) for j in (0, 1))
    # the end of the run: K_xi = 1, every draw is the first bank vector's action
    end = jax.tree.map(jnp.asarray, seeding.unstack(ms.load_seed_states(run), 1))
    assert int(end.step) == STEPS - LEARNING_STARTS + 1
    assert int(sqljax.noise_bank_size_at(end.config, end.step)) == 1
    got = _distinct_actions(end, obs)
    want = sqljax.sampler_apply(end.sampler_params, end.config.hidden_sizes, obs, end.noise_bank[0])
    assert len(got) == 1 and np.allclose(got[0], np.asarray(want), atol=1e-5)


# --------------------------------------------------------------------- the study's outputs

def test_study_writes_summary_and_figure(study, capsys):
    s = json.loads((study / "summary.json").read_text())
    assert set(s) >= {"study", "settings", "statistics", "tasks", "pretrain"}
    st = s["settings"]
    assert (st["anneal_steps"], st["final_reward_scale"], st["noise_bank_size"]) == (ANNEAL, 1000.0, BANK)
    assert st["seed_ids"] == [0, 1] and st["tasks"] == [TASK] and st["pretrain_steps"] == STEPS
    assert s["pretrain"]["env_id"] == "sqljax/AntAnyDirection-v0"
    t = s["tasks"][TASK]
    assert t["env_id"] == "sqljax/AntHallwayWide-v0"
    for arm in ("finetune", "scratch"):
        for mode in ("stochastic", "deterministic"):
            e = t[arm][mode]
            assert e["eval_steps"] == [60, 120] and e["final_step"] == STEPS
            assert len(e["final_per_seed"]) == len(e["average_per_seed"]) == 2
            for what in ("final", "average"):
                for stat in ("mean", "iqm"):
                    v = e[what][stat]
                    assert v["ci_low"] <= v["value"] <= v["ci_high"]
            rows = [rd.read_metrics(study / TASK / arm, sid)[-1] for sid in (0, 1)]
            col = "eval_return" if mode == "stochastic" else "eval_return_det"
            assert e["final_per_seed"] == pytest.approx([float(r[col]) for r in rows])
    for mode in ("stochastic", "deterministic"):
        for what in ("final", "average"):
            d = t["finetune_minus_scratch"][mode][what]
            assert set(d) == {"value", "ci_low", "ci_high", "share_positive", "verdict"}
            ft, sc = t["finetune"][mode][f"{what}_per_seed"], t["scratch"][mode][f"{what}_per_seed"]
            assert d["value"] == pytest.approx(np.mean(ft) - np.mean(sc))
            assert d["ci_low"] <= d["value"] <= d["ci_high"]
    assert (study / "transfer.png").stat().st_size > 10_000
    for arm in ("finetune", "scratch"):
        assert (study / TASK / arm / "curves.png").is_file()
    # The same command again finds every run finished and only rewrites the summary.
    capsys.readouterr()
    assert transfer.main(STUDY + ["--out", str(study)]) == 0
    assert capsys.readouterr().out.count("was finished before") == 3
    assert json.loads((study / "summary.json").read_text())["tasks"] == s["tasks"]


def test_eval_at_start_puts_a_step_0_point_in_every_arm(study, tmp_path):
    """--eval-at-start: each arm is evaluated before its first env step, and the step-0
    point counts in the average over evaluations."""
    out = tmp_path / "at_start"
    assert STUDY[:2] == ["--pretrain-steps", str(STEPS)]
    argv = STUDY[2:] + [
        "--pretrained", str(study / "pretrain"), "--eval-at-start", "--out", str(out)]
    assert transfer.main(argv) == 0
    t = json.loads((out / "summary.json").read_text())["tasks"][TASK]
    for arm in ("finetune", "scratch"):
        rows = {sid: rd.read_metrics(out / TASK / arm, sid) for sid in (0, 1)}
        assert [r["updates"] for r in rows[0] if r["step"] == "0"] == ["0"]
        for mode, col in (("stochastic", "eval_return"), ("deterministic", "eval_return_det")):
            e = t[arm][mode]
            assert e["eval_steps"] == [0, 60, 120]
            per_seed = [np.mean([float(r[col]) for r in rows[sid] if r[col] != ""]) for sid in (0, 1)]
            assert e["average_per_seed"] == pytest.approx(per_seed)
    # the pretrained learners at step 0 are the fine-tuned arm's, not the scratch arm's
    ft0 = [float(rd.read_metrics(out / TASK / "finetune", 0)[0][c]) for c in ("eval_return", "eval_return_det")]
    sc0 = [float(rd.read_metrics(out / TASK / "scratch", 0)[0][c]) for c in ("eval_return", "eval_return_det")]
    assert ft0 != sc0


def test_anneal_span_scales_with_the_run():
    assert transfer.anneal_steps_for(10_000, 0.2) == 2_000
    assert transfer.anneal_steps_for(1_000_000, 0.2) == transfer.PAPER_ANNEAL_STEPS
    assert transfer.anneal_steps_for(10_000, 0.2, explicit=0) == 0


# --------------------------------------------------------------------- comparing protocols
def test_report_compares_arms_of_studies_sharing_scratch(study, tmp_path, capsys):
    """Two studies with the same scratch runs: each fine-tuned arm against scratch, the
    numbers equal the study's own summary, and the committed curves.csv alone gives the
    same report again."""
    import shutil

    from experiments.studies import transfer_report as tr

    other = tmp_path / "other"
    shutil.copytree(study, other)
    out = tmp_path / "report"
    assert tr.main([str(study), str(other), "--names", "paper", "again", "--out", str(out),
                    "--bootstrap-reps", "1000"]) == 0
    rows = tr.read_curves(out / "curves.csv")
    assert {r["arm"] for r in rows} == {"paper", "again", "scratch"}
    for r in rows:
        run = study / TASK / ("scratch" if r["arm"] == "scratch" else "finetune")
        m = {int(x["step"]): x for x in rd.read_metrics(run, r["seed"])}[r["step"]]
        assert r["eval_return_det"] == pytest.approx(float(m["eval_return_det"]), rel=1e-5)
        assert r["target_mean"] == pytest.approx(float(m["target_mean"]), rel=1e-5)
    report = json.loads((out / "report.json").read_text())
    own = json.loads((study / "summary.json").read_text())["tasks"][TASK]["finetune_minus_scratch"]
    for mode in ("stochastic", "deterministic"):
        m = report["tasks"][TASK][mode]
        for what in ("final", "average"):
            d = m["paper"]["minus_scratch"][what]
            assert d["value"] == pytest.approx(own[mode][what]["value"], abs=1e-3)
            same = m["again"]["minus_scratch"][what]
            assert {k: d[k] for k in ("value", "ci_low", "ci_high")} == {
                k: same[k] for k in ("value", "ci_low", "ci_high")}
            assert (d["verdict"], same["verdict"]) in {("paper higher", "again higher"),
                                                       ("scratch higher",) * 2,
                                                       ("no clear difference",) * 2}
    table = (out / "report.md").read_text()
    assert table.count(f"| {TASK} |") == 4  # 2 modes x 2 fine-tuned arms
    assert (out / "report.png").stat().st_size > 10_000
    again = tmp_path / "again"
    assert tr.main(["--curves", str(out / "curves.csv"), "--out", str(again),
                    "--bootstrap-reps", "1000"]) == 0
    assert (again / "report.json").read_text() == (out / "report.json").read_text()

    # Studies with other scratch runs, or bad names, are refused in one line.
    metrics = other / TASK / "scratch" / "seed0" / "metrics.csv"
    text = metrics.read_text().splitlines()
    last = text[-1].split(",")
    last[5] = str(float(last[5]) + 1.0)  # eval_return
    metrics.write_text("\n".join(text[:-1] + [",".join(last)]) + "\n")
    capsys.readouterr()
    assert tr.main([str(study), str(other), "--out", str(tmp_path / "bad")]) == 2
    assert "holds other scratch runs" in one_error_line(capsys)
    assert tr.main([str(study), "--names", "a", "b", "--out", str(tmp_path / "bad")]) == 2
    assert "--names needs 1 distinct names" in one_error_line(capsys)


def test_report_takes_a_baseline_study_with_its_own_scratch_runs(study, tmp_path, capsys):
    """--baseline NAME=STUDY: its fine-tuned and scratch runs are arms NAME and NAME-scratch
    (its scratch runs need not be the first study's); --compare A B reports A minus B."""
    import shutil

    from experiments.studies import transfer_report as tr

    swapped = tmp_path / "swapped"  # a study whose arms are the first study's, swapped
    (swapped / TASK).mkdir(parents=True)
    shutil.copytree(study / TASK / "scratch", swapped / TASK / "finetune")
    shutil.copytree(study / TASK / "finetune", swapped / TASK / "scratch")
    out = tmp_path / "report"
    argv = [str(study), "--names", "paper", "--baseline", f"b={swapped}", "--compare", "paper", "b",
            "--compare", "b-scratch", "scratch", "--bootstrap-reps", "1000"]
    assert tr.main(argv + ["--out", str(out)]) == 0
    rows = tr.read_curves(out / "curves.csv")
    assert list(dict.fromkeys(r["arm"] for r in rows)) == ["paper", "scratch", "b", "b-scratch"]
    for arm, same in (("b", "scratch"), ("b-scratch", "paper")):
        for col in ("eval_return", "eval_return_det"):
            assert tr.curve(rows, TASK, arm, col)[1].tolist() == tr.curve(rows, TASK, same, col)[1].tolist()
    report = json.loads((out / "report.json").read_text())["tasks"][TASK]
    for mode in ("stochastic", "deterministic"):
        m = report[mode]
        for what in ("final", "average"):
            want = m["paper"]["minus_scratch"][what]["value"]
            assert m["paper"]["minus"]["b"][what]["value"] == pytest.approx(want)
            assert m["b-scratch"]["minus"]["scratch"][what]["value"] == pytest.approx(want)
            assert m["b"]["minus_scratch"][what]["value"] == pytest.approx(0.0, abs=1e-9)
    table = (out / "report.md").read_text()
    assert table.count("| paper | b |") == table.count("| b-scratch | scratch |") == 2
    # the same pairs rebuild the same report from the curves alone
    again = tmp_path / "again"
    assert tr.main(["--curves", str(out / "curves.csv"), "--compare", "paper", "b", "--compare",
                    "b-scratch", "scratch", "--bootstrap-reps", "1000", "--out", str(again)]) == 0
    assert (again / "report.json").read_text() == (out / "report.json").read_text()
    capsys.readouterr()
    for bad, message in ((["--baseline", "b"], "expected NAME=STUDY_DIR"),
                         (["--baseline", f"paper={swapped}"], "the arms' names must differ"),
                         (["--compare", "paper", "nobody"], "needs two different arms")):
        assert tr.main([str(study), "--names", "paper", *bad, "--out", str(tmp_path / "bad")]) == 2
        assert message in one_error_line(capsys)


def test_report_reads_an_actor_critic_baselines_critic_loss(study, tmp_path):
    """DDPG's and SAC's metrics call their TD loss critic_loss: the report's q_loss column
    takes it, so a DDPG baseline has its loss curve beside SQL's."""
    import csv
    import shutil

    from experiments.studies import transfer_report as tr

    renamed = tmp_path / "renamed"
    shutil.copytree(study / TASK, renamed / TASK)
    files = sorted(renamed.glob(f"{TASK}/*/seed*/metrics.csv"))
    assert len(files) == 4  # two arms x two seeds
    for path in files:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        rows[0] = ["critic_loss" if c == "q_loss" else c for c in rows[0]]
        with open(path, "w", newline="") as f:
            csv.writer(f).writerows(rows)
    rows = tr.collect([study], ["paper"], [("b", renamed)])
    for arm, same in (("b", "paper"), ("b-scratch", "scratch")):
        got = tr.curve(rows, TASK, arm, "q_loss")[1]
        assert np.isfinite(got[:, 1:]).all()  # past the first evaluation, updates have run
        np.testing.assert_array_equal(got, tr.curve(rows, TASK, same, "q_loss")[1])


def test_plan_records_the_pretrained_learners_env():
    """--pretrained learners carry the env they were trained on; the study's settings say it."""
    zoo = Path(__file__).resolve().parents[1] / "zoo" / "AntAnyDirection-v1" / "pretrain"
    args = transfer.build_parser().parse_args(["--pretrained", str(zoo), "--seeds", "2",
                                               "--tasks", "AntHallwayWide-v1"])
    plan = transfer.make_plan(args)
    assert plan.settings["pretrain_env"] == "sqljax/AntAnyDirection-v1"
    assert plan.pretrain is None and plan.pretrained == str(zoo)


# --------------------------------------------------------------------- another learner
def test_ddpg_study_has_its_flags_and_refuses_the_schedules(tmp_path, capsys):
    """--learner ddpg: DDPG's config flags and presets; the SQL-only schedule flags are
    refused in one line before anything is written; its arms are DDPG runs without
    schedules."""
    from sqljax import learners

    with pytest.raises(SystemExit) as e:
        transfer.main(["--learner", "ddpg", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for f in ("--actor-lr", "--critic-lr", "--policy-delay", "--exploration", "{code,modern,paper}",
              "DDPGConfig fields"):
        assert f in text, f
    assert "--reward-scale" not in text and "--kernel-n-particles" not in text

    out = tmp_path / "never"
    assert transfer.main(["--learner", "ddpg", "--anneal-steps", "40", "--noise-bank-size", "4",
                          "--out", str(out), "--no-progress"]) == 2
    line = one_error_line(capsys)
    assert "--anneal-steps, --noise-bank-size:" in line and "DDPGConfig has none" in line, line
    assert "--final-reward-scale" not in line and not out.exists()

    args = transfer.build_parser(learners.get("ddpg")).parse_args(
        ["--learner", "ddpg", "--seeds", "2", "--tasks", "AntHallwayWide", "--hidden-sizes", "32"])
    plan = transfer.make_plan(args)
    specs = [plan.pretrain, *plan.tasks[TASK].values()]
    assert all(learners.of_config(s.config).name == "ddpg" for s in specs)
    assert plan.pretrain.config.hidden_sizes == (32,) and plan.pretrain.preset == "code"
    assert plan.tasks[TASK]["finetune"].config == plan.pretrain.config
    assert plan.settings["anneal_steps"] == 0 and plan.settings["noise_bank_size"] == 0
