"""DDPG / TD3: target, losses, delayed and Polyak updates, vmap, exploration, config."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import learner_references as references
import numpy as np
import pytest
from learner_references import np_mlp, np_tree

import sqljax.learners as learners
from sqljax.config import SQLConfig
from sqljax.learners import ddpg
from sqljax.learners.ddpg import DDPGConfig
from sqljax.learners.protocol import Batch
from sqljax.networks import actor_apply, init_actor_params

OBS, ACT, B = 3, 2, 5
HIDDEN = (8, 8)


def small(**kw) -> DDPGConfig:
    return DDPGConfig(hidden_sizes=HIDDEN, batch_size=B, **kw)


# Two configs (each compiles `update` once): DDPG with a hard copy every 3 updates, and TD3
# (the modern preset: twin critics, smoothing, delay 2, Polyak targets) on tiny networks.
DDPG1 = small(target_update_interval=3, actor_lr=1e-4)
TD3 = DDPGConfig.preset("modern", hidden_sizes=HIDDEN, batch_size=B)
UPDATE = jax.jit(ddpg.update)


def make_batch(seed: int = 0) -> Batch:
    return references.make_batch(B, OBS, ACT, [0, 1, 0, 1, 0], seed)


def np_actor(params, obs):
    p = np_tree(params)["params"]
    names = [f"hidden_{i}" for i in range(len(HIDDEN))] + ["output"]
    return np.tanh(np_mlp([(p[n]["kernel"], p[n]["bias"]) for n in names], np.asarray(obs, np.float64)))


def np_critics(params, obs, action):
    """(n_q, B) from stacked critic params."""
    p = np_tree(params)["params"]["trunk"]
    names = ["input"] + [f"hidden_{i}" for i in range(len(HIDDEN) - 1)] + ["output"]
    x = np.concatenate([obs, action], axis=-1).astype(np.float64)
    n_q = p["input"]["kernel"].shape[0]
    return np.stack([np_mlp([(p[n]["kernel"][i], p[n]["bias"][i]) for n in names], x)[..., 0]
                     for i in range(n_q)])


def perturbed(tree, seed, scale=0.3):
    """The tree plus N(0, scale²) noise (float32 NumPy leaves)."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda x: (np.asarray(x) + scale * rng.normal(size=x.shape)).astype(np.float32), tree)


def np_target(s, batch):
    """`update`'s y (B,) for state s: the target actor's smoothed action, with ε drawn as
    `update` draws it (from the second half of the state's key)."""
    c = s.config
    eps = c.policy_noise * np.asarray(jax.random.normal(jax.random.split(s.key)[1], (B, ACT)), np.float64)
    a_next = np.clip(np_actor(s.target_actor_params, batch.next_obs) + np.clip(eps, -c.noise_clip, c.noise_clip),
                     -1, 1)
    q_next = np_critics(s.target_critic_params, batch.next_obs, a_next).min(axis=0)
    return batch.reward + c.discount * (1 - batch.terminated) * q_next


def leaves_equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def assert_tree_allclose(a, b, **kw):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), **kw)


# ---------------------------------------------------------------- networks and pieces

def test_actor_matches_numpy_shapes_and_init():
    params = init_actor_params(jax.random.key(0), HIDDEN, OBS, ACT)
    obs = np.random.default_rng(1).normal(size=(4, 6, OBS)).astype(np.float32)
    a = actor_apply(params, HIDDEN, obs)
    assert a.shape == (4, 6, ACT)
    np.testing.assert_allclose(a, np_actor(params, obs), rtol=1e-5, atol=1e-6)
    assert np.all(np.abs(np.asarray(a)) <= 1)
    assert all(np.all(np.asarray(layer["bias"]) == 0) for layer in params["params"].values())
    bound = np.sqrt(6 / (OBS + HIDDEN[0]))
    assert np.abs(params["params"]["hidden_0"]["kernel"]).max() <= bound


def test_init_state():
    s = ddpg.init(jax.random.key(0), small(n_q=2), OBS, ACT)
    assert s.obs_dim == OBS and s.action_dim == ACT and int(s.step) == 0
    assert s.key.dtype == jnp.uint32 and s.key.shape == (2,)
    assert s.critic_params["params"]["trunk"]["input"]["kernel"].shape == (2, OBS + ACT, HIDDEN[0])
    assert leaves_equal(s.actor_params, s.target_actor_params)
    assert leaves_equal(s.critic_params, s.target_critic_params)
    assert not np.array_equal(s.critic_params["params"]["trunk"]["input"]["kernel"][0],
                              s.critic_params["params"]["trunk"]["input"]["kernel"][1])
    with pytest.raises(TypeError, match="DDPGConfig"):
        ddpg.init(jax.random.key(0), SQLConfig(), OBS, ACT)


@pytest.mark.parametrize("n_q", [1, 2])
def test_critic_target_against_numpy(n_q):
    s = ddpg.init(jax.random.key(n_q), small(n_q=n_q), OBS, ACT)
    target_critic = perturbed(s.critic_params, 7)
    batch = make_batch(1)
    next_action = np.random.default_rng(2).uniform(-1, 1, size=(B, ACT)).astype(np.float32)
    y = ddpg.critic_target(target_critic, HIDDEN, batch, next_action, 0.9)
    q_next = np_critics(target_critic, batch.next_obs, next_action).min(axis=0)
    expected = batch.reward + 0.9 * (1 - batch.terminated) * q_next
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(y)[[1, 3]], batch.reward[[1, 3]], rtol=1e-6)  # terminated: reward only
    if n_q == 2:  # the minimum differs from either critic alone
        both = np_critics(target_critic, batch.next_obs, next_action)
        assert np.any(both[0] != both[1])


@pytest.mark.parametrize("cfg", [DDPG1, TD3], ids=["ddpg", "td3"])
def test_update_target_mean_uses_target_actor_and_critics(cfg):
    s = ddpg.init(jax.random.key(3), cfg, OBS, ACT)
    s = s.replace(target_actor_params=perturbed(s.actor_params, 1),
                  target_critic_params=perturbed(s.critic_params, 2))
    batch = make_batch(4)
    _, m = UPDATE(s, batch)
    y = np_target(s, batch)
    np.testing.assert_allclose(m["target_mean"], y.mean(), rtol=1e-5)
    if cfg.policy_noise > 0:  # the smoothing noise matters
        no_noise = np_target(s.replace(config=cfg.replace(policy_noise=0.0)), batch)
        assert abs(y.mean() - no_noise.mean()) > 1e-3


def test_target_smoothing_clips_noise_and_action():
    target_action = np.array([[0.9, -0.2], [-0.95, 0.0], [0.1, 0.99], [0.4, -0.6], [0.0, 0.0]], np.float32)
    noise = np.array([[0.8, -0.1], [-2.0, 0.3], [0.05, 0.7], [-0.51, 0.49], [3.0, -3.0]], np.float32)
    out = ddpg.smoothed_target_action(target_action, noise, 0.5)
    expected = np.clip(target_action + np.clip(noise, -0.5, 0.5), -1, 1)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    np.testing.assert_allclose(out[4], [0.5, -0.5])
    np.testing.assert_allclose(out[0], [1.0, -0.3], rtol=1e-6)


@pytest.mark.parametrize("cfg", [DDPG1, TD3], ids=["ddpg", "td3"])
def test_losses_against_numpy(cfg):
    s = ddpg.init(jax.random.key(5), cfg, OBS, ACT)
    s = s.replace(target_critic_params=perturbed(s.critic_params, 3))
    batch = make_batch(6)
    new, m = UPDATE(s, batch)
    y = np_target(s, batch)
    q = np_critics(s.critic_params, batch.obs, batch.action)
    assert q.shape == (cfg.n_q, B)
    np.testing.assert_allclose(m["critic_loss"], np.sum(0.5 * np.mean((q - y) ** 2, axis=-1)) / cfg.n_q,
                               rtol=1e-5)
    np.testing.assert_allclose(m["q_mean"], q.mean(), rtol=1e-5, atol=1e-7)
    # the actor's loss (reported even when the step is delayed) is taken against the first,
    # already updated critic
    q1 = np_critics(new.critic_params, batch.obs, np_actor(s.actor_params, batch.obs))[0]
    np.testing.assert_allclose(m["actor_loss"], -q1.mean(), rtol=1e-5, atol=1e-7)
    direct = ddpg.actor_loss(s.actor_params, s.critic_params, HIDDEN, batch.obs)
    q1_old = np_critics(s.critic_params, batch.obs, np_actor(s.actor_params, batch.obs))[0]
    np.testing.assert_allclose(direct, -q1_old.mean(), rtol=1e-5, atol=1e-7)
    assert float(m["actor_updated"]) == (1.0 if cfg.policy_delay == 1 else 0.0)
    assert sorted(m) == sorted(ddpg.UPDATE_METRICS)


def test_actor_step_increases_q():
    s = ddpg.init(jax.random.key(8), DDPG1, OBS, ACT)
    batch = make_batch(9)
    new, m = UPDATE(s, batch)
    before = ddpg.actor_loss(s.actor_params, new.critic_params, HIDDEN, batch.obs)
    after = ddpg.actor_loss(new.actor_params, new.critic_params, HIDDEN, batch.obs)
    np.testing.assert_allclose(before, m["actor_loss"], rtol=1e-6)
    assert float(after) < float(before)  # Q(s, μ(s)) went up


# ---------------------------------------------------------------- schedules

def test_policy_delay_and_polyak_targets():
    tau = TD3.target_tau
    assert (TD3.policy_delay, TD3.target_update_interval, TD3.n_q) == (2, 1, 2) and TD3.policy_noise > 0
    s0 = ddpg.init(jax.random.key(10), TD3, OBS, ACT)
    s0 = s0.replace(target_actor_params=perturbed(s0.actor_params, 1),
                    target_critic_params=perturbed(s0.critic_params, 2))
    step = UPDATE
    batch = make_batch(11)
    s1, m1 = step(s0, batch)
    assert float(m1["actor_updated"]) == 0.0
    assert leaves_equal(s1.actor_params, s0.actor_params)
    assert leaves_equal(s1.actor_opt_state, s0.actor_opt_state)
    assert leaves_equal(s1.target_actor_params, s0.target_actor_params)
    assert leaves_equal(s1.target_critic_params, s0.target_critic_params)
    assert not leaves_equal(s1.critic_params, s0.critic_params)
    s2, m2 = step(s1, make_batch(12))
    assert float(m2["actor_updated"]) == 1.0 and int(s2.step) == 2
    assert not leaves_equal(s2.actor_params, s1.actor_params)
    for theta, old, new in ((s2.actor_params, s1.target_actor_params, s2.target_actor_params),
                            (s2.critic_params, s1.target_critic_params, s2.target_critic_params)):
        expected = jax.tree.map(lambda t, o: tau * np.asarray(t) + (1 - tau) * np.asarray(o), theta, old)
        assert_tree_allclose(new, expected, rtol=1e-6)


def test_ddpg_hard_copy_every_interval():
    s = ddpg.init(jax.random.key(13), DDPG1, OBS, ACT)
    init_targets = (s.target_actor_params, s.target_critic_params)
    for i in range(1, 4):
        s, m = UPDATE(s, make_batch(20 + i))
        assert float(m["actor_updated"]) == 1.0
        if i < 3:
            assert leaves_equal((s.target_actor_params, s.target_critic_params), init_targets)
    assert leaves_equal(s.target_actor_params, s.actor_params)
    assert leaves_equal(s.target_critic_params, s.critic_params)


def test_vmap_matches_single_seeds():
    states = [ddpg.init(jax.random.key(i), TD3, OBS, ACT) for i in range(3)]
    batches = [[make_batch(10 * i + t) for i in range(3)] for t in range(2)]
    stack = lambda xs: jax.tree.map(lambda *a: jnp.stack(a), *xs)  # noqa: E731
    vstate = stack(states)
    vupdate, single = jax.jit(jax.vmap(ddpg.update)), UPDATE
    for t in range(2):
        vstate, vm = vupdate(vstate, stack(batches[t]))
        for i in range(3):
            states[i], m = single(states[i], batches[t][i])
            assert_tree_allclose(jax.tree.map(lambda x: x[i], vstate), states[i], atol=1e-6, rtol=1e-5)
            assert_tree_allclose({k: v[i] for k, v in vm.items()}, m, atol=1e-6, rtol=1e-5)
    np.testing.assert_array_equal(vm["actor_updated"], [1.0, 1.0, 1.0])


def test_batch_checks():
    s = ddpg.init(jax.random.key(0), small(), OBS, ACT)
    batch = make_batch()
    with pytest.raises(ValueError, match="batch_size"):
        ddpg.update(s, Batch(*(x[:4] for x in batch)))
    with pytest.raises(AssertionError):
        ddpg.update(s, batch._replace(action=batch.action[:, :1]))
    with pytest.raises(TypeError, match="batch.reward"):
        ddpg.update(s, batch._replace(reward=np.zeros(B, np.int32)))


# ---------------------------------------------------------------- exploration

def test_ou_reverts_geometrically_without_noise():
    s = ddpg.init(jax.random.key(0), small(ou_theta=0.2, ou_sigma=0.0), OBS, ACT)
    obs = np.zeros((4, OBS), np.float32)
    x0 = jnp.tile(jnp.array([0.5, -1.5]), (4, 1))
    x = x0
    keys = jax.random.split(jax.random.key(1), 5)
    mu = actor_apply(s.actor_params, HIDDEN, obs)
    for t in range(1, 6):
        a, x = ddpg.act(s, x, obs, keys[t - 1])
        np.testing.assert_allclose(x, 0.8 ** t * np.asarray(x0), rtol=1e-5)
        np.testing.assert_allclose(a, np.clip(mu + x, -1, 1), rtol=1e-5, atol=1e-6)


def test_ou_stationary_std():
    theta, sigma, n = 0.15, 0.3, 20_000
    s = ddpg.init(jax.random.key(0), small(ou_theta=theta, ou_sigma=sigma), OBS, ACT)
    obs = jnp.zeros((n, OBS))

    @jax.jit
    def run(key):
        def body(x, k):
            a, x = ddpg.act(s, x, obs, k)
            return x, a
        x0 = jnp.broadcast_to(ddpg.explore_init(s.config, ACT), (n, ACT))
        x, a = jax.lax.scan(body, x0, jax.random.split(key, 80))
        return x, a[-1]

    x, a = run(jax.random.key(2))
    assert x.shape == (n, ACT) and np.all(np.abs(np.asarray(a)) <= 1)
    expected = sigma / np.sqrt(1 - (1 - theta) ** 2)
    np.testing.assert_allclose(np.std(np.asarray(x), axis=0), expected, rtol=0.05)
    np.testing.assert_allclose(np.mean(np.asarray(x), axis=0), 0.0, atol=0.05 * expected)


def test_gaussian_and_deterministic_acting():
    s = ddpg.init(jax.random.key(0), small(exploration="gaussian", exploration_sigma=0.1), OBS, ACT)
    assert ddpg.explore_init(s.config, ACT) == ()
    assert ddpg.explore_init(small(), ACT).shape == (ACT,)
    obs = np.random.default_rng(0).normal(size=(4000, OBS)).astype(np.float32) * 0.1
    mu = actor_apply(s.actor_params, HIDDEN, obs)
    a, explore = ddpg.act(s, (), obs, jax.random.key(1))
    assert explore == () and a.shape == (4000, ACT)
    np.testing.assert_allclose(np.std(np.asarray(a - mu)), 0.1, rtol=0.05)
    d, x = ddpg.act(s, "unchanged", obs, None, deterministic=True)
    assert x == "unchanged"
    np.testing.assert_array_equal(d, mu)


# ---------------------------------------------------------------- config, presets, registry

@pytest.mark.parametrize("field,value", [
    ("hidden_sizes", ()), ("actor_lr", 0.0), ("critic_lr", float("nan")), ("discount", 1.5),
    ("target_update_interval", 0), ("target_tau", 0.0), ("n_q", 3), ("exploration", "uniform"),
    ("ou_theta", -0.1), ("ou_sigma", -0.1), ("exploration_sigma", -1.0), ("policy_noise", -0.2),
    ("noise_clip", 0.0), ("policy_delay", 0), ("batch_size", 0), ("warmup_actions", "random"),
])
def test_config_errors_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"DDPGConfig.{field} "):
        DDPGConfig(**{field: value})


def test_config_soft_target_needs_interval_one():
    with pytest.raises(ValueError, match="DDPGConfig.target_tau"):
        DDPGConfig(target_tau=0.005)
    DDPGConfig(target_tau=0.005, target_update_interval=1)


def test_config_defaults_and_presets():
    c = DDPGConfig()
    assert (c.batch_size, c.replay_size, c.learning_starts, c.updates_per_step, c.max_episode_steps) == (
        128, 1_000_000, 1000, 1, 1000)
    assert c.warmup_actions == "uniform" and c == DDPGConfig.preset("code")
    assert (c.hidden_sizes, c.actor_lr, c.critic_lr, c.target_update_interval, c.target_tau) == (
        (128, 128), 3e-4, 3e-4, 1000, 1.0)
    assert (c.exploration, c.ou_theta, c.ou_sigma, c.n_q, c.policy_noise, c.policy_delay) == (
        "ou", 0.15, 0.3, 1, 0.0, 1)
    p = DDPGConfig.preset("paper")
    assert (p.hidden_sizes, p.critic_lr, p.actor_lr, p.batch_size, p.learning_starts,
            p.max_episode_steps, p.target_update_interval, p.target_tau, p.exploration,
            p.ou_theta, p.ou_sigma) == ((200, 200), 1e-3, 1e-4, 64, 10_000, 500, 1000, 1.0, "ou", 0.15, 0.3)
    m = DDPGConfig.preset("modern", task="Ant-v5")
    assert (m.n_q, m.policy_noise, m.noise_clip, m.policy_delay, m.target_tau, m.target_update_interval,
            m.exploration, m.exploration_sigma, m.batch_size, m.learning_starts) == (
        2, 0.2, 0.5, 2, 0.005, 1, "gaussian", 0.1, 256, 5000)
    assert (m.hidden_sizes, m.actor_lr, m.critic_lr) == (c.hidden_sizes, c.actor_lr, c.critic_lr)
    assert DDPGConfig.preset("paper", batch_size=32).batch_size == 32
    with pytest.raises(ValueError, match="unknown preset"):
        DDPGConfig.preset("nope")
    assert DDPGConfig.from_dict(m.to_dict()) == m


def test_registry_and_protocol():
    learner = learners.get("ddpg")
    assert learner is ddpg.LEARNER and "ddpg" in learners.names()
    assert learners.of_config(DDPGConfig()) is learner
    assert learner.make_config("modern") == DDPGConfig.preset("modern")
    s = ddpg.init(jax.random.key(0), small(), OBS, ACT)
    assert learners.of_state(s) is learner
    assert learners.tagged_config(s.config)["learner"] == "ddpg"
    assert learners.config_from_dict(learners.tagged_config(s.config)) == s.config
    for name in learner.export_fields:
        assert hasattr(s, name)


def test_finetune_copies_params_and_refreshes_optimisers():
    s = ddpg.init(jax.random.key(0), TD3, OBS, ACT)
    s, _ = UPDATE(s, make_batch())
    s = s.replace(target_actor_params=perturbed(s.actor_params, 4))
    f = ddpg.LEARNER.finetune(jax.random.key(1), s, TD3.replace(actor_lr=1e-5))
    assert f.config.actor_lr == 1e-5 and int(f.step) == 0
    assert leaves_equal(f.actor_params, s.actor_params) and leaves_equal(f.critic_params, s.critic_params)
    assert leaves_equal(f.target_actor_params, s.actor_params)
    assert leaves_equal(f.target_critic_params, s.critic_params)
    assert int(f.actor_opt_state[0].count) == 0 and int(f.critic_opt_state[0].count) == 0
    assert ddpg.finetune_state(jax.random.key(1), s).config == s.config
    with pytest.raises(ValueError, match="hidden_sizes"):
        ddpg.finetune_state(jax.random.key(1), s, DDPGConfig(hidden_sizes=(4, 4), n_q=2, batch_size=B))
    with pytest.raises(ValueError, match="n_q"):
        ddpg.finetune_state(jax.random.key(1), s, small(n_q=1))
