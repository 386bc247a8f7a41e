"""What the core learns, measured: the sampler on a known bimodal energy, and Q on a
one-step probe with a known reward."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

import sqljax
from sqljax.networks import init_sampler_params, sampler_apply

W_LEFT, MODE, WIDTH = 0.7, 0.5, 0.1


def bimodal_energy(a):
    """log(0.7 N(a; -0.5, 0.1²) + 0.3 N(a; 0.5, 0.1²)) up to a constant; a (..., 1)."""
    x = a[..., 0]
    left = jnp.log(W_LEFT) - 0.5 * ((x + MODE) / WIDTH) ** 2
    right = jnp.log(1 - W_LEFT) - 0.5 * ((x - MODE) / WIDTH) ** 2
    return jnp.logaddexp(left, right)


def test_sampler_covers_both_modes_with_the_right_weights():
    """Q held fixed to a bimodal energy: SVGD teaches the sampler both modes with their
    weights. The squash term (1 - a²) is equal at ±0.5, so the weights stay 0.7 / 0.3."""
    hidden, K, B = (64, 64), 32, 32
    params = init_sampler_params(jax.random.key(0), hidden, 1, 1)
    opt = optax.adam(3e-3)
    opt_state = opt.init(params)
    obs = jnp.zeros((B, 1))

    def step(carry, key):
        params, opt_state = carry
        noise = jax.random.normal(key, (B, K, 1))
        out = sqljax.sampler_svgd_gradient(lambda p, xi: sampler_apply(p, hidden, obs, xi),
                                           params, noise, bimodal_energy, K // 2)
        upd, opt_state = opt.update(jax.tree.map(jnp.negative, out.grads), opt_state, params)
        return (optax.apply_updates(params, upd), opt_state), None

    (params, _), _ = jax.jit(lambda c, ks: jax.lax.scan(step, c, ks))(
        (params, opt_state), jax.random.split(jax.random.key(1), 2500))
    a = np.asarray(sampler_apply(params, hidden, jnp.zeros((1,)),
                                 jax.random.normal(jax.random.key(9), (20000, 1))))[:, 0]
    left = a < 0
    assert 0.6 <= left.mean() <= 0.8, left.mean()
    assert abs(a[left].mean() + MODE) < 0.06, a[left].mean()
    assert abs(a[~left].mean() - MODE) < 0.06, a[~left].mean()
    assert 0.06 < a[left].std() < 0.15, a[left].std()
    # nothing in the valley between the modes
    assert np.mean(np.abs(a) < 0.15) < 0.03


def test_one_step_probe_q_matches_scaled_reward():
    """Terminal transitions with reward r(s, a) = -||a - s||²: Q(s, a) -> reward_scale · r."""
    cfg = sqljax.SQLConfig(hidden_sizes=(64, 64), qf_lr=3e-3, policy_lr=1e-3, batch_size=128,
                           reward_scale=2.0)
    state = sqljax.init(jax.random.key(0), cfg, 2, 2)

    def reward(s, a):
        return -jnp.sum((a - 0.5 * s) ** 2, -1)

    def make_batch(key):
        k1, k2 = jax.random.split(key)
        s = jax.random.uniform(k1, (128, 2), minval=-1, maxval=1)
        a = jax.random.uniform(k2, (128, 2), minval=-1, maxval=1)
        return sqljax.Batch(s, a, reward(s, a), s, jnp.ones(128))

    def step(state, key):
        state, m = sqljax.update(state, make_batch(key))
        return state, m["q_loss"]

    state, losses = jax.jit(lambda st, ks: jax.lax.scan(step, st, ks))(
        state, jax.random.split(jax.random.key(1), 1500))
    test = make_batch(jax.random.key(2))
    q = sqljax.q_values(state, test.obs, test.action)
    target = cfg.reward_scale * test.reward
    rmse = float(jnp.sqrt(jnp.mean((q - target) ** 2)))
    assert rmse < 0.1 * float(jnp.std(target)), (rmse, float(jnp.std(target)))
    # and the sampler concentrates where the reward is high: a ≈ 0.5 s
    acts = sqljax.sample_actions(state, test.obs, jax.random.key(3), deterministic=True)
    assert float(jnp.mean(jnp.abs(acts - 0.5 * test.obs))) < 0.15
