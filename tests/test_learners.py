"""The learner protocol (sqljax/learners): the registry, the drivers' independence of the
algorithm, exploration state that lives in the driver's carry (reset where an episode
starts, in the gymnasium driver, the compiled loop and evaluation), checkpoints that carry
the learner's name, and refusals across learners."""

import json
import re
import shutil
from pathlib import Path

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sqljax
from sqljax import learners, seeding
from sqljax.envs import make_jax_env
from sqljax.learners import ddpg
from sqljax.loops import RunError, device, evaluation
from sqljax.loops import multi_seed as ms
from sqljax.loops.gym_loop import GymProgram
from sqljax.loops.scan_loop import make_train
from sqljax.store import run_dir as rd

REPO = Path(__file__).resolve().parents[1]
TINY_DDPG = dict(hidden_sizes=(16,), batch_size=16, learning_starts=20)


def test_registry_finds_learners_by_name_config_and_state():
    assert {"sql", "ddpg", "sac"} <= set(learners.names())
    assert learners.get(None) is learners.get("sql") is learners.of_config(sqljax.SQLConfig())
    d = learners.get("ddpg")
    assert learners.of_config(ddpg.DDPGConfig()) is d
    state = d.init(jax.random.key(0), ddpg.DDPGConfig(**TINY_DDPG), 3, 2)
    assert learners.of_state(state) is d
    with pytest.raises(ValueError, match="unknown learner 'nope'; choose one of"):
        learners.get("nope")
    with pytest.raises(TypeError, match="not the config of a registered learner"):
        learners.of_config(object())
    # config.json round trip with the learner's tag; an untagged one is SQL's
    cfg = ddpg.DDPGConfig.preset("modern")
    assert learners.config_from_dict(learners.tagged_config(cfg)) == cfg
    assert learners.config_from_dict(sqljax.SQLConfig().to_dict()) == sqljax.SQLConfig()


def test_drivers_and_store_name_no_learner():
    """No file under sqljax/loops or sqljax/store names an algorithm's types or functions."""
    specific = re.compile(r"SQLState|SQLConfig|DDPG|sample_actions|UPDATE_METRICS|q_params|"
                          r"sampler_params|actor_params|finetune_state|reward_scale|sqljax\.(init|update)\b")
    for folder in ("loops", "store"):
        for path in (REPO / "sqljax" / folder).glob("*.py"):
            hits = [m.group(0) for m in specific.finditer(path.read_text())]
            assert not hits, f"{path.name} names {sorted(set(hits))}"


def test_the_core_imports_no_environment_code():
    for name in ("config.py", "update.py", "networks.py", "kernel.py", "value.py", "svgd.py",
                 "replay.py", "checkpoint.py", "learners/protocol.py", "learners/sql.py",
                 "learners/ddpg.py", "learners/sac.py", "learners/actor_critic.py", "learners/__init__.py"):
        text = (REPO / "sqljax" / name).read_text()
        assert "sqljax.envs" not in text and "gymnasium" not in text.replace("no gymnasium", ""), name


def test_exploration_state_resets_where_an_episode_ends():
    cfg = ddpg.DDPGConfig(**TINY_DDPG)
    agent = ddpg.init(jax.random.key(0), cfg, 3, 2)
    carry = device.new_carry(agent, jax.random.key(1), 64)
    np.testing.assert_array_equal(carry.explore, np.zeros(2))
    carry = carry.replace(explore=jnp.array([0.5, -0.7]))
    args = (jnp.zeros(2), jnp.ones(3), jnp.float32(1.0), False)
    stats = device.new_stats(learners.get("ddpg").metrics)
    kept, _ = device.store_and_learn(cfg, carry, stats, *args, jnp.bool_(False), False)
    reset, _ = device.store_and_learn(cfg, carry, stats, *args, jnp.bool_(True), False)
    np.testing.assert_allclose(kept.explore, [0.5, -0.7])
    np.testing.assert_array_equal(reset.explore, [0.0, 0.0])


def test_compiled_loop_resets_ou_noise_at_episode_boundaries():
    """mjx-free check on MultiGoal: the time limit cuts every 10 steps; after a chunk that ends
    on a cut the noise is the initial one, one step earlier it is not."""
    env, params = make_jax_env("MultiGoal")
    cfg = ddpg.DDPGConfig(**TINY_DDPG, max_episode_steps=10, ou_theta=0.0)
    at_cut = make_train(cfg, env, params, capacity=64, chunk_steps=10)
    before = make_train(cfg, env, params, capacity=64, chunk_steps=9)
    key = jax.random.key(3)
    c10, _ = jax.jit(at_cut.run_chunk)(at_cut.init_carry(key), device.new_stats(ddpg.UPDATE_METRICS))
    c9, _ = jax.jit(before.run_chunk)(before.init_carry(key), device.new_stats(ddpg.UPDATE_METRICS))
    assert int(c10.episodes) == 1 and int(c9.episodes) == 0
    np.testing.assert_array_equal(c10.explore, np.zeros(2))
    assert float(jnp.min(jnp.abs(c9.explore))) > 0  # a random walk of 9 steps


def test_gym_driver_starts_every_episode_with_fresh_noise(tmp_path):
    """ou_theta = 0 makes the noise a random walk: its size after t steps is about sigma sqrt(t).
    Episodes of 20 steps: right after an episode ends the carry holds one step's noise, at
    the step before it 19 steps' (8 seeds, so the check cannot pass by chance)."""
    cfg = ddpg.DDPGConfig(**TINY_DDPG, max_episode_steps=20, ou_theta=0.0, ou_sigma=0.3)
    spec = rd.RunSpec(env_id="Pendulum-v1", config=cfg, seed_ids=tuple(range(8)), steps=40,
                      out=tmp_path, progress=False)
    mesh = ms.mesh_for(8, None)
    prog = GymProgram(spec, mesh)
    try:
        carry = prog.fns["init"](seeding.to_global(seeding.seed_keys(0, spec.seed_ids),
                                                   seeding.seed_sharding(mesh)))
        stats = ms.stats_fns(mesh, 8, ddpg.UPDATE_METRICS)[0]()
        carry = prog.begin(carry, 0)
        carry, stats, _ = prog.advance(carry, stats, 0, 19, lambda: False)
        late = np.abs(np.asarray(carry.explore))
        carry, stats, _ = prog.advance(carry, stats, 19, 20, lambda: False)
        fresh = np.abs(np.asarray(carry.explore))
    finally:
        prog.close()
    assert np.all(np.asarray(carry.episodes) == 1)
    assert np.max(fresh) < 0.3 * 5 and np.mean(late) > 0.3 * 2


def test_evaluation_episodes_start_from_the_initial_noise():
    cfg = ddpg.DDPGConfig(**TINY_DDPG)
    agent = ddpg.init(jax.random.key(0), cfg, 2, 2)
    stacked = jax.tree.map(lambda x: x[None], agent)
    explore = evaluation.initial_explore(stacked, (1, 4))
    assert explore.shape == (1, 4, 2) and not explore.any()
    mask = jnp.array([False, False, True, True])
    actions, new = evaluation.act_eval(agent, jnp.asarray(explore[0]), jnp.zeros((4, 2)), mask,
                                       jax.random.key(1), 0)
    mu = ddpg.act(agent, (), jnp.zeros((4, 2)), None, True)[0]
    np.testing.assert_allclose(actions[2:], mu[2:])  # deterministic rows: mu(s), noise kept
    np.testing.assert_array_equal(new[2:], 0.0)
    assert np.all(np.abs(np.asarray(new[:2])) > 0)


def test_checkpoints_carry_the_learner_and_refuse_another(tmp_path):
    cfg = ddpg.DDPGConfig(**TINY_DDPG)
    state = ddpg.init(jax.random.key(0), cfg, 3, 2)
    sqljax.save_checkpoint(tmp_path / "full", state)
    sqljax.export_learner(tmp_path / "export", state)
    for name in ("full", "export"):
        meta = json.loads((tmp_path / name / "sqljax.json").read_text())
        assert meta["learner"] == "ddpg"
        back = sqljax.load_checkpoint(tmp_path / name)
        assert isinstance(back, ddpg.DDPGState) and back.config == cfg
        for a, b in zip(jax.tree.leaves(ddpg.LEARNER.params(state)), jax.tree.leaves(ddpg.LEARNER.params(back))):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(RunError, match="holds a ddpg learner, not sql"):
        ms.load_init_states(tmp_path / "export", [0], "x", 3, 2, "sql")
    # an untagged checkpoint (written before learners had names) is SQL's
    sql_state = sqljax.init(jax.random.key(0), sqljax.SQLConfig(hidden_sizes=(8,)), 3, 2)
    sqljax.export_learner(tmp_path / "sql", sql_state)
    meta_file = tmp_path / "sql" / "sqljax.json"
    meta = json.loads(meta_file.read_text())
    del meta["learner"]
    meta_file.write_text(json.dumps(meta))
    assert isinstance(sqljax.load_checkpoint(tmp_path / "sql"), sqljax.SQLState)
    with pytest.raises(RunError, match="holds a sql learner, not ddpg"):
        ms.load_init_states(tmp_path / "sql", [0], "x", 3, 2, "ddpg")


def test_uniform_warmup_actions_are_the_same_for_every_learner():
    """Seed i draws the same warm-up actions whatever the learner (uniform warm-up)."""
    env, params = make_jax_env("MultiGoal")
    sql_cfg = sqljax.SQLConfig(hidden_sizes=(8,), batch_size=8, value_n_particles=4,
                               kernel_n_particles=4, learning_starts=30, warmup_actions="uniform")
    ddpg_cfg = ddpg.DDPGConfig(hidden_sizes=(8,), batch_size=8, learning_starts=30)
    stored = []
    for cfg in (sql_cfg, ddpg_cfg):
        fns = make_train(cfg, env, params, capacity=64, chunk_steps=25)
        carry, _ = jax.jit(fns.run_chunk)(fns.init_carry(jax.random.key(5)),
                                          device.new_stats(learners.of_config(cfg).metrics))
        stored.append(np.asarray(carry.buffer.experience.action)[0, :25])
    np.testing.assert_array_equal(stored[0], stored[1])
    assert np.abs(stored[0]).max() <= 1 and np.std(stored[0]) > 0.4  # uniform on [-1, 1]


def test_a_run_saved_before_the_exploration_state_still_resumes(tmp_path):
    """A run checkpoint of the earlier format (``sqljax-run-2``: a carry without the
    exploration state) resumes, with the same numbers as the run it was copied from."""
    cfg = sqljax.SQLConfig(hidden_sizes=(8,), batch_size=8, value_n_particles=4,
                           kernel_n_particles=4, learning_starts=20)

    def spec(out, steps):
        return rd.RunSpec(env_id="MultiGoal", config=cfg, seed_ids=(0,), steps=steps, out=out,
                          eval_every=0, checkpoint_every=50, log_every=50, progress=False)

    quiet = dict(log=lambda _: None)
    ms.train(spec(tmp_path / "new", 50), **quiet)
    old = tmp_path / "old"
    shutil.copytree(tmp_path / "new", old)
    ckpt = rd.latest_checkpoint(old)
    counters = rd.run_counters(ckpt)
    carry = ms.load_run_state(ckpt)
    fields = {k: v for k, v in flax.serialization.to_state_dict(carry).items()
              if k != "explore"}
    shutil.rmtree(ckpt)
    sqljax.save_checkpoint(ckpt, jax.tree.map(lambda x: x[0], carry.agent), extra={"carry": fields},
                           metadata=dict(counters, format="sqljax-run-2"))
    run_json = json.loads((old / rd.RUN_FILE).read_text())
    (old / rd.RUN_FILE).write_text(json.dumps(dict(run_json, format="sqljax-run-2")))
    a = ms.train(spec(tmp_path / "new", 100), resume=True, **quiet)["agents"]
    b = ms.train(spec(old, 100), resume=True, **quiet)["agents"]
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert json.loads((old / rd.RUN_FILE).read_text())["format"] == rd.RUN_FORMAT
