"""The composed update: jit and vmap as is, one compile, target schedule, twin Q."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sqljax

OBS, ACT, B = 5, 3, 16
SMALL = sqljax.SQLConfig(hidden_sizes=(32, 32), batch_size=B, value_n_particles=8,
                         kernel_n_particles=8, target_update_interval=3, reward_scale=3.0)


def random_batch(key, b=B, obs=OBS, act=ACT):
    k = jax.random.split(key, 5)
    return sqljax.Batch(jax.random.normal(k[0], (b, obs)),
                        jax.random.uniform(k[1], (b, act), minval=-1, maxval=1),
                        jax.random.normal(k[2], (b,)),
                        jax.random.normal(k[3], (b, obs)),
                        (jax.random.uniform(k[4], (b,)) < 0.2).astype(jnp.float32))


def leaves_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_init_state_fields_and_shapes():
    s = sqljax.init(jax.random.key(0), SMALL, OBS, ACT)
    for name in ("q_params", "target_q_params", "sampler_params", "q_opt_state",
                 "sampler_opt_state", "key", "step", "config"):
        assert hasattr(s, name)
    assert s.obs_dim == OBS and s.action_dim == ACT and int(s.step) == 0
    assert leaves_equal(s.q_params, s.target_q_params)
    # zero biases, Xavier-uniform weights (bounded by sqrt(6 / (fan_in + fan_out)))
    first = s.sampler_params["params"]["trunk"]["input"]
    assert np.all(np.asarray(first["bias"]) == 0)
    bound = np.sqrt(6 / (OBS + ACT + 32))
    assert np.abs(first["kernel"]).max() <= bound and np.abs(first["kernel"]).max() > 0.8 * bound


def test_update_metrics_are_finite_and_named():
    s = sqljax.init(jax.random.key(0), SMALL, OBS, ACT)
    s, m = jax.jit(sqljax.update)(s, random_batch(jax.random.key(1)))
    assert set(m) >= {"q_loss", "q_mean", "value_mean", "kernel_bandwidth", "svgd_norm",
                      "sampler_grad_norm"}
    assert all(np.isfinite(float(v)) for v in m.values())
    assert int(s.step) == 1


def test_td_target_uses_soft_value_of_target_network():
    """Recompute the Q loss by hand from the same random draws."""
    s = sqljax.init(jax.random.key(4), SMALL, OBS, ACT)
    batch = random_batch(jax.random.key(5))
    _, m = jax.jit(sqljax.update)(s, batch)
    _, k_value, _ = jax.random.split(s.key, 3)
    acts = sqljax.uniform_actions(k_value, SMALL.value_n_particles, ACT)
    q_next = sqljax.q_values(s, batch.next_obs, jnp.broadcast_to(acts, (B,) + acts.shape), target=True)
    v = jax.nn.logsumexp(q_next, -1) - np.log(SMALL.value_n_particles) + ACT * np.log(2)
    y = SMALL.reward_scale * batch.reward + SMALL.discount * (1 - batch.terminated) * v
    q = sqljax.q_values(s, batch.obs, batch.action)
    np.testing.assert_allclose(m["q_loss"], 0.5 * np.mean((q - y) ** 2), rtol=1e-5)
    np.testing.assert_allclose(m["value_mean"], np.mean(v), rtol=1e-5)


def test_jit_and_vmap_agree_per_seed_and_seeds_differ():
    n = 3
    states = [sqljax.init(jax.random.key(i), SMALL, OBS, ACT) for i in range(n)]
    batches = [random_batch(jax.random.key(100 + i)) for i in range(n)]
    stacked_s = jax.tree.map(lambda *x: jnp.stack(x), *states)
    stacked_b = jax.tree.map(lambda *x: jnp.stack(x), *batches)
    up, vup = jax.jit(sqljax.update), jax.jit(jax.vmap(sqljax.update))
    for _ in range(3):
        states = [up(s, b)[0] for s, b in zip(states, batches)]
        stacked_s, _ = vup(stacked_s, stacked_b)
    for i in range(n):
        solo = states[i]
        from_vmap = jax.tree.map(lambda x: x[i], stacked_s)
        for a, b in zip(jax.tree.leaves(solo), jax.tree.leaves(from_vmap)):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
    p0 = jax.tree.leaves(stacked_s.sampler_params)[0]
    assert not np.allclose(p0[0], p0[1])


def test_update_compiles_once():
    traces = []

    def counted(state, batch):
        traces.append(1)
        return sqljax.update(state, batch)

    f = jax.jit(counted)
    s = sqljax.init(jax.random.key(0), SMALL, OBS, ACT)
    for i in range(5):
        s, _ = f(s, random_batch(jax.random.key(i)))
    assert len(traces) == 1
    vtraces = []

    def vcounted(state, batch):
        vtraces.append(1)
        return jax.vmap(sqljax.update)(state, batch)

    vf = jax.jit(vcounted)
    ss = jax.vmap(lambda k: sqljax.init(k, SMALL, OBS, ACT))(jax.random.split(jax.random.key(0), 2))
    for i in range(4):
        bb = jax.vmap(random_batch)(jax.random.split(jax.random.key(i), 2))
        ss, _ = vf(ss, bb)
    assert len(vtraces) == 1


def test_target_is_copied_every_interval_and_untouched_between():
    s = sqljax.init(jax.random.key(0), SMALL, OBS, ACT)
    up = jax.jit(sqljax.update)
    initial_target = s.target_q_params
    for n in range(1, 10):
        before = s.target_q_params
        s, _ = up(s, random_batch(jax.random.key(n)))
        if n % SMALL.target_update_interval == 0:
            assert leaves_equal(s.target_q_params, s.q_params)
        else:
            assert leaves_equal(s.target_q_params, before)
            assert not leaves_equal(s.target_q_params, s.q_params)
        if n < SMALL.target_update_interval:
            assert leaves_equal(s.target_q_params, initial_target)


def test_polyak_target_after_k_updates():
    cfg = SMALL.replace(target_tau=0.1, target_update_interval=1)
    s = sqljax.init(jax.random.key(0), cfg, OBS, ACT)
    up = jax.jit(sqljax.update)
    expected = jax.tree.map(np.asarray, s.target_q_params)
    for n in range(4):
        s, _ = up(s, random_batch(jax.random.key(n)))
        expected = jax.tree.map(lambda q, t: 0.1 * np.asarray(q) + 0.9 * t, s.q_params, expected)
    for a, b in zip(jax.tree.leaves(s.target_q_params), jax.tree.leaves(expected)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_twin_q_target_uses_elementwise_min():
    cfg = SMALL.replace(n_q=2)
    s = sqljax.init(jax.random.key(7), cfg, OBS, ACT)
    assert jax.tree.leaves(s.q_params)[0].shape[0] == 2
    batch = random_batch(jax.random.key(8))
    _, m = jax.jit(sqljax.update)(s, batch)
    _, k_value, _ = jax.random.split(s.key, 3)
    acts = sqljax.uniform_actions(k_value, cfg.value_n_particles, ACT)
    acts = jnp.broadcast_to(acts, (B,) + acts.shape)
    q_each = sqljax.q_apply(s.target_q_params, cfg.hidden_sizes, batch.next_obs, acts)  # (2, B, K)
    assert not np.allclose(q_each[0], q_each[1])
    q_min = np.minimum(q_each[0], q_each[1])
    v = np.log(np.mean(np.exp(q_min), -1)) + ACT * np.log(2)
    y = cfg.reward_scale * batch.reward + cfg.discount * (1 - batch.terminated) * v
    q = sqljax.q_apply(s.q_params, cfg.hidden_sizes, batch.obs, batch.action)  # (2, B)
    expected_loss = np.mean([0.5 * np.mean((q[i] - y) ** 2) for i in range(2)])
    np.testing.assert_allclose(m["q_loss"], expected_loss, rtol=1e-5)
    np.testing.assert_allclose(m["value_mean"], np.mean(v), rtol=1e-5)


def test_single_q_path_unchanged_by_twin_option():
    """n_q = 1 is the authors' algorithm: equal to an explicit single-network computation."""
    s = sqljax.init(jax.random.key(0), SMALL, OBS, ACT)
    batch = random_batch(jax.random.key(1))
    q_ens = sqljax.q_apply(s.q_params, SMALL.hidden_sizes, batch.obs, batch.action)
    single = jax.tree.map(lambda x: x[0], s.q_params)
    q_one = sqljax.QFunction(SMALL.hidden_sizes).apply(single, batch.obs, batch.action)
    np.testing.assert_array_equal(q_ens[0], q_one)


def test_sample_actions_shapes_bounds_and_determinism():
    s = sqljax.init(jax.random.key(0), SMALL, OBS, ACT)
    obs = jax.random.normal(jax.random.key(1), (4, 7, OBS))
    a = sqljax.sample_actions(s, obs, jax.random.key(2))
    assert a.shape == (4, 7, ACT) and float(jnp.max(jnp.abs(a))) <= 1.0
    d1 = sqljax.sample_actions(s, obs, jax.random.key(2), deterministic=True)
    d2 = sqljax.sample_actions(s, obs, jax.random.key(3), deterministic=True)
    np.testing.assert_array_equal(d1, d2)
    expected = sqljax.sampler_apply(s.sampler_params, SMALL.hidden_sizes, obs, jnp.zeros((4, 7, ACT)))
    np.testing.assert_array_equal(d1, expected)
    a2 = sqljax.sample_actions(s, obs, jax.random.key(3))
    assert not np.allclose(a, a2)
    assert sqljax.sample_actions(s, obs[0, 0], jax.random.key(2)).shape == (ACT,)


def test_bad_batch_shapes_fail_clearly():
    s = sqljax.init(jax.random.key(0), SMALL, OBS, ACT)
    bad = random_batch(jax.random.key(1), obs=OBS + 1)
    with pytest.raises(AssertionError):
        sqljax.update(s, bad)


def test_schedules_exact_values():
    cfg = sqljax.SQLConfig(reward_scale=10.0, final_reward_scale=1000.0, anneal_steps=200,
                           noise_bank_size=9)
    rs = [float(sqljax.reward_scale_at(cfg, jnp.asarray(t))) for t in (0, 100, 200, 400)]
    np.testing.assert_allclose(rs, [10.0, 100.0, 1000.0, 1000.0], rtol=1e-5)
    ks = [int(sqljax.noise_bank_size_at(cfg, jnp.asarray(t))) for t in (0, 100, 200, 300)]
    assert ks == [9, 5, 1, 1]
    plain = sqljax.SQLConfig(reward_scale=30.0)
    assert float(sqljax.reward_scale_at(plain, jnp.asarray(12345))) == 30.0
    assert int(sqljax.noise_bank_size_at(plain, jnp.asarray(0))) == 0


def test_noise_bank_restricts_stochastic_actions():
    cfg = SMALL.replace(noise_bank_size=4, anneal_steps=10)
    s = sqljax.init(jax.random.key(0), cfg, OBS, ACT)
    obs = jnp.broadcast_to(jax.random.normal(jax.random.key(1), (OBS,)), (500, OBS))
    distinct = lambda a: len(np.unique(np.round(np.asarray(a), 5), axis=0))  # noqa: E731
    assert distinct(sqljax.sample_actions(s, obs, jax.random.key(2))) == 4
    s10 = s.replace(step=jnp.asarray(10, jnp.int32))
    assert distinct(sqljax.sample_actions(s10, obs, jax.random.key(2))) == 1


def test_finetune_state_copies_networks_and_resets_optimisers():
    s = sqljax.init(jax.random.key(0), SMALL, OBS, ACT)
    up = jax.jit(sqljax.update)
    for i in range(2):
        s, _ = up(s, random_batch(jax.random.key(i)))
    cfg = SMALL.replace(final_reward_scale=300.0, anneal_steps=50, noise_bank_size=4)
    f = sqljax.finetune_state(jax.random.key(9), s, cfg)
    assert leaves_equal(f.q_params, s.q_params) and leaves_equal(f.sampler_params, s.sampler_params)
    assert leaves_equal(f.target_q_params, s.q_params)
    assert int(f.step) == 0 and f.config == cfg
    fresh = sqljax.init(jax.random.key(9), cfg, OBS, ACT)
    assert jax.tree.structure(f) == jax.tree.structure(fresh)
    assert all(float(jnp.abs(x).sum()) == 0 for x in jax.tree.leaves(f.q_opt_state)
               if x.dtype != jnp.int32)
    with pytest.raises(ValueError, match="hidden_sizes"):
        sqljax.finetune_state(jax.random.key(9), s, SMALL.replace(hidden_sizes=(16,)))


def test_q_in_reward_units_is_the_scaled_learner_times_alpha():
    """With Q_reward = alpha Q_scaled (finetune_state converts exactly), one update gives
    alpha times the scaled learner's value and target, and the same sampler step: its
    target, exp(Q_reward / alpha), is the same distribution."""
    s = sqljax.init(jax.random.key(0), SMALL, OBS, ACT)
    up = jax.jit(sqljax.update)
    for i in range(3):  # a target that differs from Q
        s, _ = up(s, random_batch(jax.random.key(i)))
    r = sqljax.finetune_state(jax.random.key(7), s, SMALL.replace(q_units="reward"))
    s = sqljax.finetune_state(jax.random.key(7), s, SMALL)
    alpha = 1.0 / SMALL.reward_scale
    x = random_batch(jax.random.key(8))
    np.testing.assert_allclose(sqljax.q_values(r, x.obs, x.action),
                               alpha * sqljax.q_values(s, x.obs, x.action), rtol=1e-5, atol=1e-6)
    s1, ms_ = up(s, x)
    r1, mr = up(r, x)
    for name in ("value_mean", "target_mean", "q_mean"):
        np.testing.assert_allclose(mr[name], alpha * ms_[name], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(mr["svgd_norm"], ms_["svgd_norm"], rtol=1e-4)
    for a, b in zip(jax.tree.leaves(r1.sampler_params), jax.tree.leaves(s1.sampler_params)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # and back: reward units -> scaled restores the pretrained Q
    back = sqljax.finetune_state(jax.random.key(7), r, SMALL)
    np.testing.assert_allclose(sqljax.q_values(back, x.obs, x.action),
                               sqljax.q_values(s, x.obs, x.action), rtol=1e-5, atol=1e-6)


def test_q_in_reward_units_keeps_the_targets_scale_under_an_anneal():
    """Annealing the reward scale 3 -> 300: scaled targets grow with it, reward-unit ones
    do not (same Q, same batch, the anneal's last update)."""
    cfg = SMALL.replace(final_reward_scale=300.0, anneal_steps=10)
    x = random_batch(jax.random.key(3))._replace(reward=jnp.linspace(0.5, 1.5, B))
    at_end = {}
    for units in ("scaled", "reward"):
        st = sqljax.init(jax.random.key(0), cfg.replace(q_units=units), OBS, ACT)
        _, at_end[units] = jax.jit(sqljax.update)(st.replace(step=jnp.asarray(10, jnp.int32)), x)
    assert float(at_end["scaled"]["reward_scale"]) == pytest.approx(300.0, rel=1e-5)
    reward_mean = float(jnp.mean(x.reward))
    # y = 300 r + gamma V against y = r + gamma V, V of a freshly initialised Q either way
    assert abs(float(at_end["scaled"]["target_mean"])) > 50 * abs(reward_mean)
    assert abs(float(at_end["reward"]["target_mean"]) - reward_mean) < abs(reward_mean)


def test_scale_q_multiplies_every_member_of_the_ensemble():
    from sqljax.networks import scale_q
    cfg = SMALL.replace(n_q=2)
    s = sqljax.init(jax.random.key(2), cfg, OBS, ACT)
    x = random_batch(jax.random.key(3))
    q = sqljax.networks.q_apply(s.q_params, cfg.hidden_sizes, x.obs, x.action)
    scaled = sqljax.networks.q_apply(scale_q(s.q_params, 2.5), cfg.hidden_sizes, x.obs, x.action)
    assert q.shape == (2, B)
    np.testing.assert_allclose(scaled, 2.5 * q, rtol=1e-6, atol=1e-6)
