"""SAC: the tanh-Gaussian density, target, losses, temperature, Polyak targets, vmap, acting,
config, checkpoints, and (slow) learning on Pendulum."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import learner_references as references
import numpy as np
import pytest
from learner_references import np_mlp, np_tree

import sqljax
import sqljax.learners as learners
from sqljax.config import SQLConfig
from sqljax.learners import sac
from sqljax.learners.protocol import Batch
from sqljax.learners.sac import SACConfig
from sqljax.networks import gaussian_policy_apply, init_gaussian_policy_params

OBS, ACT, B = 3, 2, 5
HIDDEN = (8, 8)


def small(**kw) -> SACConfig:
    return SACConfig(hidden_sizes=HIDDEN, batch_size=B, **kw)


# Two configs (each compiles `update` once): SAC's defaults (twin critics, Polyak targets,
# learned temperature) on tiny networks, and one critic, hard copies every 2 updates and a
# fixed temperature.
SAC = small()
FIXED = small(n_q=1, target_tau=1.0, target_update_interval=2, learn_alpha=False, init_alpha=0.2)
UPDATE = jax.jit(sac.update)


def make_batch(seed: int = 0) -> Batch:
    return references.make_batch(B, OBS, ACT, [0, 1, 0, 0, 1], seed)


def np_policy(params, obs):
    """(mean, log_std), each (*S, A), in float64."""
    p = np_tree(params)["params"]
    trunk = [(p[f"hidden_{i}"]["kernel"], p[f"hidden_{i}"]["bias"]) for i in range(len(HIDDEN))]
    h = np.maximum(np_mlp(trunk, np.asarray(obs, np.float64)), 0.0)  # the last hidden layer's ReLU
    mean = h @ p["mean"]["kernel"] + p["mean"]["bias"]
    log_std = np.clip(h @ p["log_std"]["kernel"] + p["log_std"]["bias"], -20, 2)
    return mean, log_std


def np_sample(mean, log_std, noise):
    """tanh-Gaussian sample and log-density, the Jacobian term as log(1 - tanh(u)²) directly."""
    noise = np.asarray(noise, np.float64)
    u = mean + np.exp(log_std) * noise
    log_normal = -0.5 * ((u - mean) / np.exp(log_std)) ** 2 - log_std - 0.5 * np.log(2 * np.pi)
    return np.tanh(u), np.sum(log_normal - np.log(1 - np.tanh(u) ** 2), axis=-1)


def np_critics(params, obs, action):
    """(n_q, B) from stacked critic params."""
    p = np_tree(params)["params"]["trunk"]
    names = ["input"] + [f"hidden_{i}" for i in range(len(HIDDEN) - 1)] + ["output"]
    x = np.concatenate([obs, action], axis=-1).astype(np.float64)
    return np.stack([np_mlp([(p[n]["kernel"][i], p[n]["bias"][i]) for n in names], x)[..., 0]
                     for i in range(p["input"]["kernel"].shape[0])])


def np_target(actor, target_critic, batch, noise, alpha, discount):
    a, logp = np_sample(*np_policy(actor, batch.next_obs), noise)
    v = np_critics(target_critic, batch.next_obs, a).min(axis=0) - alpha * logp
    return batch.reward + discount * (1 - batch.terminated) * v


def update_noise(s):
    """The (B, A) noises `update` draws for the target and the actor from the state's key."""
    _, k_target, k_actor = jax.random.split(s.key, 3)
    return tuple(np.asarray(jax.random.normal(k, (B, ACT))) for k in (k_target, k_actor))


def perturbed(tree, seed, scale=0.3):
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda x: (np.asarray(x) + scale * rng.normal(size=x.shape)).astype(np.float32), tree)


def leaves_equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def assert_tree_allclose(a, b, **kw):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), **kw)


def varied(cfg=SAC, seed=0, log_alpha=-1.2):
    """A state whose actor, critics and targets all differ (random, non-zero biases)."""
    s = sac.init(jax.random.key(seed), cfg, OBS, ACT)
    return s.replace(actor_params=perturbed(s.actor_params, seed + 1),
                     critic_params=perturbed(s.critic_params, seed + 2),
                     target_critic_params=perturbed(s.critic_params, seed + 3),
                     log_alpha=jnp.float32(log_alpha))


# ---------------------------------------------------------------- network and density

def test_policy_network_matches_numpy_and_clips_log_std():
    params = perturbed(init_gaussian_policy_params(jax.random.key(0), HIDDEN, OBS, ACT), 1)
    obs = np.random.default_rng(1).normal(size=(4, 6, OBS)).astype(np.float32)
    mean, log_std = gaussian_policy_apply(params, HIDDEN, obs)
    assert mean.shape == log_std.shape == (4, 6, ACT)
    for got, want in zip((mean, log_std), np_policy(params, obs)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    fresh = init_gaussian_policy_params(jax.random.key(0), HIDDEN, OBS, ACT)
    assert all(np.all(np.asarray(layer["bias"]) == 0) for layer in fresh["params"].values())
    for bias, bound in ((50.0, 2.0), (-50.0, -20.0)):
        p = jax.tree.map(lambda x: x, params)
        p["params"]["log_std"]["bias"] = np.full(ACT, bias, np.float32)
        np.testing.assert_array_equal(gaussian_policy_apply(p, HIDDEN, obs)[1], bound)


def test_tanh_gaussian_log_prob_against_numpy():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(7, ACT)).astype(np.float32)
    log_std = rng.uniform(-2, 1, size=(7, ACT)).astype(np.float32)
    noise = rng.normal(size=(7, ACT)).astype(np.float32)
    noise[0] = (5.0 - mean[0]) / np.exp(log_std[0])  # far in the tail: u = 5, 1 - tanh² ~ 2e-4
    a, logp = sac.sample_tanh_gaussian(mean, log_std, noise)
    want_a, want_logp = np_sample(np.float64(mean), np.float64(log_std), noise)
    assert a.shape == (7, ACT) and logp.shape == (7,)
    np.testing.assert_allclose(a, want_a, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logp, want_logp, rtol=1e-4, atol=1e-4)
    # no epsilon in the Jacobian term: at u = 12 the naive form would be capped by it
    _, tail = sac.sample_tanh_gaussian(np.zeros(1, np.float32), np.zeros(1, np.float32), np.full(1, 12.0, np.float32))
    np.testing.assert_allclose(tail, -72 - 0.5 * np.log(2 * np.pi) + 2 * (12 - np.log(2)), rtol=1e-5)


def test_tanh_gaussian_density_integrates_to_one():
    """1-D: ∫ π(a) da over (-1, 1) by the trapezoid rule on a fine grid of u = atanh(a)."""
    for m, s in ((0.3, 0.8), (-1.0, 1.5), (0.0, 0.1)):
        u = np.linspace(m - 10 * s, m + 10 * s, 40_001)
        noise = ((u - m) / s).astype(np.float32)[:, None]
        a, logp = sac.sample_tanh_gaussian(np.full((1,), m, np.float32), np.full((1,), np.log(s), np.float32), noise)
        mass = np.trapezoid(np.exp(np.float64(logp)), np.tanh(u))
        np.testing.assert_allclose(mass, 1.0, atol=2e-3)
        assert np.all(np.abs(np.asarray(a)) <= 1)


# ---------------------------------------------------------------- target and losses

def test_init_state():
    s = sac.init(jax.random.key(0), small(init_alpha=0.5), OBS, ACT)
    assert s.obs_dim == OBS and s.action_dim == ACT and int(s.step) == 0
    assert s.key.dtype == jnp.uint32 and s.key.shape == (2,)
    assert s.log_alpha.shape == () and s.log_alpha.dtype == jnp.float32
    np.testing.assert_allclose(s.log_alpha, np.log(0.5), rtol=1e-6)
    assert s.critic_params["params"]["trunk"]["input"]["kernel"].shape == (2, OBS + ACT, HIDDEN[0])
    assert leaves_equal(s.critic_params, s.target_critic_params)
    with pytest.raises(TypeError, match="SACConfig"):
        sac.init(jax.random.key(0), SQLConfig(), OBS, ACT)


def test_critic_target_against_numpy():
    s = varied(seed=4)
    batch = make_batch(1)
    noise = np.random.default_rng(2).normal(size=(B, ACT)).astype(np.float32)
    y = sac.critic_target(s.actor_params, s.target_critic_params, HIDDEN, batch, noise, 0.5, 0.9)
    want = np_target(s.actor_params, s.target_critic_params, batch, noise, 0.5, 0.9)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(y)[[1, 4]], batch.reward[[1, 4]], rtol=1e-6)  # terminated
    # both the entropy bonus and the minimum over the twin critics matter
    assert np.abs(want - np_target(s.actor_params, s.target_critic_params, batch, noise, 0.0, 0.9)).max() > 1e-2
    a, _ = np_sample(*np_policy(s.actor_params, batch.next_obs), noise)
    both = np_critics(s.target_critic_params, batch.next_obs, a)
    assert np.any(both[0] != both[1])


def test_actor_and_temperature_losses_against_numpy():
    s = varied(seed=5)
    batch = make_batch(3)
    noise = np.random.default_rng(4).normal(size=(B, ACT)).astype(np.float32)
    loss, logp = sac.actor_loss(s.actor_params, s.critic_params, HIDDEN, batch.obs, noise, 0.3)
    a, want_logp = np_sample(*np_policy(s.actor_params, batch.obs), noise)
    q = np_critics(s.critic_params, batch.obs, a).min(axis=0)
    np.testing.assert_allclose(logp, want_logp, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(loss, np.mean(0.3 * want_logp - q), rtol=1e-5, atol=1e-6)
    t = sac.temperature_loss(jnp.float32(-0.7), logp, -2.0)
    np.testing.assert_allclose(t, 0.7 * np.mean(want_logp - 2.0), rtol=1e-5)
    # the gradient reaches log α only, not log π
    g_alpha, g_logp = jax.grad(sac.temperature_loss, argnums=(0, 1))(jnp.float32(-0.7), logp, -2.0)
    np.testing.assert_allclose(g_alpha, -np.mean(want_logp - 2.0), rtol=1e-4)
    np.testing.assert_array_equal(g_logp, 0.0)


@pytest.mark.parametrize("cfg", [SAC, FIXED], ids=["sac", "fixed"])
def test_update_metrics_against_numpy(cfg):
    s = varied(cfg, seed=6)
    batch = make_batch(7)
    new, m = UPDATE(s, batch)
    assert sorted(m) == sorted(sac.UPDATE_METRICS)  # (jit returns dicts with sorted keys)
    alpha = float(np.exp(np.float64(s.log_alpha)))
    target_noise, actor_noise = update_noise(s)
    y = np_target(s.actor_params, s.target_critic_params, batch, target_noise, alpha, cfg.discount)
    q = np_critics(s.critic_params, batch.obs, batch.action)
    assert q.shape == (cfg.n_q, B)
    np.testing.assert_allclose(m["target_mean"], y.mean(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m["q_mean"], q.mean(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m["critic_loss"], np.sum(0.5 * np.mean((q - y) ** 2, axis=-1)) / cfg.n_q,
                               rtol=1e-5)
    # the actor's loss is taken with the pre-step policy against the updated critics
    a, logp = np_sample(*np_policy(s.actor_params, batch.obs), actor_noise)
    q_new = np_critics(new.critic_params, batch.obs, a).min(axis=0)
    np.testing.assert_allclose(m["actor_loss"], np.mean(alpha * logp - q_new), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m["entropy"], -logp.mean(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(m["alpha"], alpha, rtol=1e-6)
    np.testing.assert_allclose(m["alpha_loss"], -np.log(alpha) * np.mean(logp - ACT), rtol=1e-4, atol=1e-6)
    assert int(new.step) == 1
    if cfg.learn_alpha:
        assert float(new.log_alpha) != float(s.log_alpha)
    else:
        assert float(new.log_alpha) == float(s.log_alpha) and leaves_equal(new.alpha_opt_state, s.alpha_opt_state)


def test_actor_step_lowers_its_loss():
    s = varied(seed=8)
    batch = make_batch(9)
    new, m = UPDATE(s, batch)
    _, noise = update_noise(s)
    alpha = jnp.exp(s.log_alpha)
    before, _ = sac.actor_loss(s.actor_params, new.critic_params, HIDDEN, batch.obs, noise, alpha)
    after, _ = sac.actor_loss(new.actor_params, new.critic_params, HIDDEN, batch.obs, noise, alpha)
    np.testing.assert_allclose(before, m["actor_loss"], rtol=1e-5)
    assert float(after) < float(before)


def test_temperature_follows_the_entropy():
    """Entropy below the target (-|A| = -2) -> α grows; above -> α shrinks; Adam's first step
    moves log α by the learning rate."""
    s = varied(seed=10, log_alpha=0.0)
    batch = make_batch(11)
    narrow = jax.tree.map(lambda x: x, s.actor_params)
    narrow["params"]["log_std"] = {"kernel": np.zeros((HIDDEN[-1], ACT), np.float32),
                                   "bias": np.full(ACT, -5.0, np.float32)}
    wide = jax.tree.map(lambda x: x, narrow)  # log_std 0, mean near 0: tanh of about N(0, 1)
    wide["params"]["log_std"] = {"kernel": np.zeros((HIDDEN[-1], ACT), np.float32), "bias": np.zeros(ACT, np.float32)}
    wide["params"]["mean"] = {"kernel": np.zeros((HIDDEN[-1], ACT), np.float32), "bias": np.zeros(ACT, np.float32)}
    for params, sign in ((narrow, 1), (wide, -1)):
        new, m = UPDATE(s.replace(actor_params=params), batch)
        assert sign * (float(m["entropy"]) + ACT) < 0, m["entropy"]
        np.testing.assert_allclose(float(new.log_alpha), sign * SAC.alpha_lr, rtol=1e-3)


# ---------------------------------------------------------------- targets and vmap

def test_polyak_targets_exact():
    tau = SAC.target_tau
    s0 = varied(seed=12)
    s1, _ = UPDATE(s0, make_batch(13))
    assert not leaves_equal(s1.critic_params, s0.critic_params)
    assert not leaves_equal(s1.actor_params, s0.actor_params)
    expected = jax.tree.map(lambda q, t: tau * np.asarray(q) + (1 - tau) * np.asarray(t),
                            s1.critic_params, s0.target_critic_params)
    assert_tree_allclose(s1.target_critic_params, expected, rtol=1e-6, atol=1e-7)


def test_hard_copy_every_interval():
    s0 = varied(FIXED, seed=14)
    s1, _ = UPDATE(s0, make_batch(15))
    assert leaves_equal(s1.target_critic_params, s0.target_critic_params)
    s2, _ = UPDATE(s1, make_batch(16))
    assert leaves_equal(s2.target_critic_params, s2.critic_params)
    assert not leaves_equal(s2.critic_params, s1.critic_params)


def test_vmap_matches_single_seeds():
    states = [sac.init(jax.random.key(i), SAC, OBS, ACT) for i in range(3)]
    batches = [[make_batch(10 * i + t) for i in range(3)] for t in range(2)]
    stack = lambda xs: jax.tree.map(lambda *a: jnp.stack(a), *xs)  # noqa: E731
    vstate = stack(states)
    vupdate = jax.jit(jax.vmap(sac.update))
    for t in range(2):
        vstate, vm = vupdate(vstate, stack(batches[t]))
        for i in range(3):
            states[i], m = UPDATE(states[i], batches[t][i])
            assert_tree_allclose(jax.tree.map(lambda x: x[i], vstate), states[i], atol=1e-6, rtol=1e-5)
            assert_tree_allclose({k: v[i] for k, v in vm.items()}, m, atol=1e-6, rtol=1e-5)
    assert vstate.log_alpha.shape == (3,)
    assert not np.array_equal(vm["critic_loss"][0], vm["critic_loss"][1])  # seeds differ


def test_batch_checks():
    s = sac.init(jax.random.key(0), SAC, OBS, ACT)
    batch = make_batch()
    with pytest.raises(ValueError, match="batch_size"):
        sac.update(s, Batch(*(x[:4] for x in batch)))
    with pytest.raises(AssertionError):
        sac.update(s, batch._replace(action=batch.action[:, :1]))
    with pytest.raises(TypeError, match="batch.reward"):
        sac.update(s, batch._replace(reward=np.zeros(B, np.int32)))


# ---------------------------------------------------------------- acting

def test_acting():
    s = varied(seed=17)
    assert sac.explore_init(s.config, ACT) == ()
    obs = np.random.default_rng(0).normal(size=(4, 6, OBS)).astype(np.float32)
    d, x = sac.act(s, "unchanged", obs, None, deterministic=True)
    assert x == "unchanged" and d.shape == (4, 6, ACT)
    np.testing.assert_allclose(d, np.tanh(np_policy(s.actor_params, obs)[0]), rtol=1e-5, atol=1e-6)
    key = jax.random.key(1)
    a, x = sac.act(s, (), obs, key)
    mean, log_std = gaussian_policy_apply(s.actor_params, HIDDEN, obs)
    want, _ = sac.sample_tanh_gaussian(mean, log_std, jax.random.normal(jax.random.key_data(key), (4, 6, ACT)))
    assert x == ()
    np.testing.assert_allclose(a, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="PRNG key"):
        sac.act(s, (), obs, None)
    # at obs = 0 a fresh policy is tanh(ε), ε ~ N(0, I): check the spread of atanh(a)
    fresh = sac.init(jax.random.key(2), SAC, OBS, ACT)
    a, _ = sac.act(fresh, (), np.zeros((20_000, OBS), np.float32), jax.random.key(3))
    u = np.arctanh(np.clip(np.float64(a), -1 + 1e-7, 1 - 1e-7))
    np.testing.assert_allclose(u.std(axis=0), 1.0, rtol=0.03)
    np.testing.assert_allclose(u.mean(axis=0), 0.0, atol=0.03)


# ---------------------------------------------------------------- config, registry, checkpoints

@pytest.mark.parametrize("field,value", [
    ("hidden_sizes", ()), ("actor_lr", 0.0), ("critic_lr", float("nan")), ("alpha_lr", -1e-3),
    ("init_alpha", 0.0), ("target_entropy", float("inf")), ("target_entropy", "auto"),
    ("learn_alpha", 1), ("discount", 1.5), ("n_q", 3), ("target_tau", 0.0), ("batch_size", 0),
    ("warmup_actions", "random"),
])
def test_config_errors_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"SACConfig.{field} "):
        SACConfig(**{field: value})


def test_config_defaults_and_presets():
    c = SACConfig()
    assert c == SACConfig.preset("code") and c.warmup_actions == "uniform"
    assert (c.hidden_sizes, c.n_q, c.target_tau, c.target_update_interval, c.batch_size, c.learning_starts,
            c.discount) == ((256, 256), 2, 0.005, 1, 256, 5000, 0.99)
    assert (c.actor_lr, c.critic_lr, c.alpha_lr, c.init_alpha, c.target_entropy, c.learn_alpha) == (
        3e-4, 3e-4, 3e-4, 1.0, None, True)
    q = SACConfig.preset("sql", task="gymnax:Pendulum-v1")
    code = SQLConfig.preset("code")
    assert (q.hidden_sizes, q.batch_size, q.learning_starts) == (code.hidden_sizes, code.batch_size,
                                                                 code.learning_starts)
    assert (q.actor_lr, q.critic_lr) == (code.policy_lr, code.qf_lr)
    assert (q.n_q, q.target_tau, q.target_update_interval) == (2, 0.005, 1)
    assert sac.target_entropy(q, 6) == -6.0 and sac.target_entropy(q.replace(target_entropy=-1.5), 6) == -1.5
    with pytest.raises(ValueError, match="unknown preset"):
        SACConfig.preset("nope")
    assert SACConfig.from_dict(q.to_dict()) == q
    assert SACConfig.from_dict(q.replace(target_entropy=-3.0).to_dict()).target_entropy == -3.0


def test_registry_and_protocol():
    learner = learners.get("sac")
    assert learner is sac.LEARNER and "sac" in learners.names()
    assert learners.of_config(SACConfig()) is learner
    assert learner.make_config("sql") == SACConfig.preset("sql")
    s = sac.init(jax.random.key(0), SAC, OBS, ACT)
    assert learners.of_state(s) is learner
    assert learners.config_from_dict(learners.tagged_config(s.config)) == s.config
    assert learner.metrics == sac.UPDATE_METRICS and learner.explore_init(s.config, ACT) == ()
    assert set(learner.eval_modes) == {"stochastic", "deterministic"}
    for name in learner.export_fields:
        assert hasattr(s, name)


def test_finetune_copies_params_and_refreshes_optimisers():
    s, _ = UPDATE(varied(seed=18), make_batch())
    f = sac.LEARNER.finetune(jax.random.key(1), s, SAC.replace(actor_lr=1e-5, learn_alpha=False))
    assert f.config.actor_lr == 1e-5 and int(f.step) == 0
    assert leaves_equal(f.actor_params, s.actor_params) and leaves_equal(f.critic_params, s.critic_params)
    assert leaves_equal(f.target_critic_params, s.critic_params)
    assert float(f.log_alpha) == float(s.log_alpha)
    for opt in (f.actor_opt_state, f.critic_opt_state, f.alpha_opt_state):
        assert int(opt[0].count) == 0
    assert sac.finetune_state(jax.random.key(1), s).config == s.config
    with pytest.raises(ValueError, match="hidden_sizes"):
        sac.finetune_state(jax.random.key(1), s, SACConfig(hidden_sizes=(4, 4), batch_size=B))
    with pytest.raises(ValueError, match="n_q"):
        sac.finetune_state(jax.random.key(1), s, small(n_q=1))


def test_checkpoint_and_export_round_trip(tmp_path):
    s, _ = UPDATE(varied(seed=19), make_batch())
    sqljax.save_checkpoint(tmp_path / "full", s)
    sqljax.export_learner(tmp_path / "export", s)
    for name in ("full", "export"):
        assert sqljax.read_checkpoint_metadata(tmp_path / name)["learner"] == "sac"
        back = sqljax.load_checkpoint(tmp_path / name)
        assert isinstance(back, sac.SACState) and back.config == s.config
        for field in sac.LEARNER.export_fields:
            assert leaves_equal(getattr(back, field), getattr(s, field)), field
    full = sqljax.load_checkpoint(tmp_path / "full")
    assert leaves_equal(full, s) and int(full.alpha_opt_state[0].count) == 1
    export = sqljax.load_checkpoint(tmp_path / "export")
    assert int(export.actor_opt_state[0].count) == 0  # optimisers start fresh
    # a restored learner acts as the saved one
    obs = make_batch().obs
    np.testing.assert_array_equal(sac.act(export, (), obs, None, True)[0], sac.act(s, (), obs, None, True)[0])
