import pytest

import sqljax


def test_defaults_are_the_authors_code():
    c = sqljax.SQLConfig()
    assert c.hidden_sizes == (128, 128) and c.qf_lr == 3e-4 and c.policy_lr == 3e-4
    assert c.batch_size == 128 and c.discount == 0.99
    assert c.value_n_particles == 16 and c.kernel_n_particles == 16
    assert c.kernel_update_ratio == 0.5 and c.target_update_interval == 1000
    assert c.replay_size == 1_000_000 and c.learning_starts == 1000
    assert c.n_fixed_particles == 8 and c.n_updated_particles == 8
    assert c.n_q == 1 and c.target_tau == 1.0


def test_presets():
    p = sqljax.SQLConfig.preset("paper")
    assert p.hidden_sizes == (200, 200) and p.qf_lr == 1e-3 and p.policy_lr == 1e-4
    assert p.batch_size == 64 and p.value_n_particles == 50 and p.kernel_n_particles == 32
    assert p.learning_starts == 10_000 and p.reward_scale == 10.0
    assert sqljax.SQLConfig.preset("code", task="Ant-v5").reward_scale == 300.0
    assert sqljax.SQLConfig.preset("code", task="Walker2d").reward_scale == 10.0
    assert sqljax.SQLConfig.preset("code", task="HalfCheetah", batch_size=32).batch_size == 32
    m = sqljax.SQLConfig.preset("modern", task="HalfCheetah")
    assert (m.n_q, m.target_tau, m.target_update_interval, m.batch_size, m.learning_starts) == \
        (2, 0.005, 1, 256, 5000)
    assert m.reward_scale == 30.0
    mg = sqljax.SQLConfig.preset("multigoal")
    assert mg.reward_scale == 0.1 and mg.kernel_n_particles == 32 and mg.batch_size == 64
    with pytest.raises(ValueError, match="unknown preset"):
        sqljax.SQLConfig.preset("nope")


@pytest.mark.parametrize("field,value,message", [
    ("qf_lr", 0.0, "qf_lr must be a finite number > 0"),
    ("policy_lr", -1e-3, "policy_lr"),
    ("batch_size", 0, "batch_size must be an integer >= 1"),
    ("value_n_particles", 0, "value_n_particles"),
    ("kernel_n_particles", 2, "at least 2 fixed particles"),
    ("kernel_update_ratio", 1.0, r"kernel_update_ratio must be in \(0, 1\)"),
    ("kernel_update_ratio", 0.0, "kernel_update_ratio"),
    ("discount", 1.5, r"discount must be in \(0, 1\]"),
    ("discount", 0.0, "discount"),
    ("reward_scale", float("nan"), "reward_scale"),
    ("target_tau", 0.0, "target_tau"),
    ("n_q", 3, "n_q must be 1 or 2"),
    ("hidden_sizes", (), "hidden_sizes"),
    ("learning_starts", -1, "learning_starts"),
    ("q_units", "alpha", "q_units must be 'scaled' or 'reward'"),
])
def test_invalid_values_name_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        sqljax.SQLConfig(**{field: value})


def test_round_trip_and_frozen():
    c = sqljax.SQLConfig(reward_scale=30.0, n_q=2)
    assert sqljax.SQLConfig.from_dict(c.to_dict()) == c
    with pytest.raises(Exception):
        c.batch_size = 3
    with pytest.raises(ValueError, match="unknown"):
        sqljax.SQLConfig.from_dict({"bogus": 1})
    assert hash(c) == hash(sqljax.SQLConfig(reward_scale=30.0, n_q=2))


def test_pairs_that_would_silently_do_something_else_are_refused():
    # A soft target update every 1000 updates would barely move the target.
    with pytest.raises(ValueError, match=r"target_tau must be 1 .* when target_update_interval > 1"):
        sqljax.SQLConfig(target_tau=0.005)
    soft = sqljax.SQLConfig(target_tau=0.005, target_update_interval=1)
    assert (soft.target_tau, soft.target_update_interval) == (0.005, 1)
    assert sqljax.SQLConfig(target_update_interval=500).target_tau == 1.0
    # A final reward scale without an annealing span would never be reached.
    with pytest.raises(ValueError, match="final_reward_scale must be None when anneal_steps = 0"):
        sqljax.SQLConfig(final_reward_scale=1000.0)
    assert sqljax.SQLConfig(final_reward_scale=1000.0, anneal_steps=10).final_reward_scale == 1000.0


def test_task_facts_come_from_the_task_table():
    from sqljax.envs import registry

    assert sqljax.task_reward_scale("Ant") == sqljax.task_reward_scale("Ant-v4") == 300.0
    assert sqljax.SQLConfig.preset("code", task="HalfCheetah-v5").reward_scale == 30.0
    assert sqljax.SQLConfig.preset("code", task="gymnax:Pendulum-v1").reward_scale == 10.0
    assert registry.find_task("MultiGoal") is registry.find_task("sqljax/MultiGoal-v0")
    assert registry.task_kind("MultiGoal-v0") == registry.task_kind("gymnax:Acrobot-v1") == "jax"
    assert registry.task_kind("Pendulum") == "gym"
    assert registry.default_steps("Pendulum") == 30_000 and sqljax.config.task_preset("AntUMaze") == "pretrain"
    assert registry.default_steps("Hopper-v4") == 1_000_000 and registry.default_steps("Foo-v0") == 100_000
