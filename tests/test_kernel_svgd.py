"""The kernel, bandwidth, soft value and SVGD direction against plain NumPy references."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

import sqljax


def np_rbf(xs, ys, h_min=1e-3):
    """Loop-level reference: xs (B, Kx, D), ys (B, Ky, D)."""
    B, Kx, D = xs.shape
    Ky = ys.shape[1]
    kappa = np.zeros((B, Kx, Ky))
    grad = np.zeros((B, Kx, Ky, D))
    hs = np.zeros(B)
    for b in range(B):
        d2 = np.array([[np.sum((xs[b, j] - ys[b, i]) ** 2) for i in range(Ky)] for j in range(Kx)])
        vals = np.sort(d2.ravel())
        n = vals.size
        lower_median = vals[(n - 1) // 2]  # lower of the two middle values
        h = max(lower_median / np.log(Kx), h_min)
        hs[b] = h
        for j in range(Kx):
            for i in range(Ky):
                kappa[b, j, i] = np.exp(-d2[j, i] / h)
                grad[b, j, i] = -2.0 * (xs[b, j] - ys[b, i]) / h * kappa[b, j, i]
    return kappa, grad, hs


@pytest.mark.parametrize("kx,ky,d", [(8, 8, 6), (5, 3, 2), (16, 16, 1)])
def test_rbf_kernel_matches_numpy(kx, ky, d):
    rng = np.random.default_rng(kx * 100 + d)
    xs = rng.uniform(-1, 1, (4, kx, d)).astype(np.float32)
    ys = rng.uniform(-1, 1, (4, ky, d)).astype(np.float32)
    out = jax.jit(sqljax.rbf_kernel)(xs, ys)
    kappa, grad, h = np_rbf(xs.astype(np.float64), ys.astype(np.float64))
    np.testing.assert_allclose(out.bandwidth, h, rtol=1e-5)
    np.testing.assert_allclose(out.kappa, kappa, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out.grad_x, grad, rtol=1e-4, atol=1e-5)


def test_kernel_gradient_is_the_derivative_of_kappa():
    """grad_x equals autodiff of kappa at a fixed bandwidth."""
    rng = np.random.default_rng(0)
    xs = jnp.asarray(rng.normal(size=(1, 4, 3)), jnp.float32)
    ys = jnp.asarray(rng.normal(size=(1, 5, 3)), jnp.float32)
    out = sqljax.rbf_kernel(xs, ys)
    h = out.bandwidth[0]
    jac = jax.jacobian(lambda x: jnp.exp(-jnp.sum((x[:, None] - ys[0][None]) ** 2, -1) / h))(xs[0])
    # jac[j, i, j', d] = d kappa_ji / d x_j'd, nonzero only for j' = j
    diag = jnp.stack([jac[j, :, j, :] for j in range(4)])
    np.testing.assert_allclose(out.grad_x[0], diag, rtol=1e-4, atol=1e-6)


def test_bandwidth_floor_and_lower_median():
    xs = jnp.zeros((1, 4, 2))
    assert float(sqljax.rbf_kernel(xs, xs, h_min=1e-3).bandwidth[0]) == pytest.approx(1e-3)
    # 2 x 2 distances {1, 4, 9, 16}: lower median 4 (not 6.5), / log 2
    d2 = jnp.array([[[1.0, 4.0], [9.0, 16.0]]])
    assert float(sqljax.median_bandwidth(d2, 2)[0]) == pytest.approx(4.0 / math.log(2), rel=1e-6)


def test_svgd_direction_matches_numpy():
    rng = np.random.default_rng(3)
    B, Kf, Ku, A = 3, 8, 8, 4
    fixed = rng.uniform(-1, 1, (B, Kf, A)).astype(np.float32)
    updated = rng.uniform(-1, 1, (B, Ku, A)).astype(np.float32)
    score = rng.normal(size=(B, Kf, A)).astype(np.float32)
    phi, h = jax.jit(sqljax.svgd_direction)(fixed, updated, score)
    kappa, grad, hs = np_rbf(fixed.astype(np.float64), updated.astype(np.float64))
    expected = np.zeros((B, Ku, A))
    for b in range(B):
        for i in range(Ku):
            expected[b, i] = np.mean([kappa[b, j, i] * score[b, j] + grad[b, j, i] for j in range(Kf)], axis=0)
    np.testing.assert_allclose(phi, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h, hs, rtol=1e-5)


def test_target_score_includes_squash_correction():
    a = jnp.array([[[0.3, -0.6], [0.0, 0.9]]])
    q_fn = lambda x: -jnp.sum((x - 0.2) ** 2, -1)  # noqa: E731
    score = sqljax.target_score(q_fn, a)
    expected = -2 * (a - 0.2) + (-2 * a / (1 - a**2 + 1e-6))
    np.testing.assert_allclose(score, expected, rtol=1e-5)


def exact_log_integral(c, m, dims):
    """log ∫_{[-1,1]^dims} exp(-c ||a - m||²) da by quadrature."""
    if dims == 1:
        val, _ = integrate.quad(lambda x: np.exp(-c * (x - m[0]) ** 2), -1, 1)
    else:
        val, _ = integrate.dblquad(lambda y, x: np.exp(-c * ((x - m[0]) ** 2 + (y - m[1]) ** 2)),
                                   -1, 1, -1, 1)
    return np.log(val)


@pytest.mark.parametrize("dims", [1, 2])
def test_soft_value_converges_to_the_exact_integral(dims):
    c, m = 3.0, np.array([0.4, -0.3])[:dims]
    exact = exact_log_integral(c, m, dims)

    def q_fn(obs, actions):  # (B, O), (B, K, A) -> (B, K)
        return -c * jnp.sum((actions - m) ** 2, -1) + 0.0 * obs[:, None, 0]

    obs = jnp.zeros((256, 1))  # 256 independent estimates (one key each)
    errors = []
    for k in (4, 64, 4096):
        keys = jax.random.split(jax.random.key(k), 256)
        est = jax.vmap(lambda key, o: sqljax.soft_value(q_fn, o[None], key, k, dims)[0])(keys, obs)
        errors.append(float(jnp.sqrt(jnp.mean((est - exact) ** 2))))
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[2] < 0.02, errors


def test_soft_value_of_constant_q_is_exact():
    # Q = q0 everywhere: V = q0 + A log 2 for any K.
    v = sqljax.soft_value_from_samples(jnp.full((3, 7), 1.5), action_dim=4)
    np.testing.assert_allclose(v, 1.5 + 4 * math.log(2), rtol=1e-6)


def test_sampler_gradient_is_the_vjp_of_the_updated_particles():
    """g = ∂/∂θ Σ stop_gradient(φ)·a_updated(θ), with φ from the fixed particles' score."""
    from sqljax.networks import init_sampler_params, sampler_apply

    hidden = (16,)
    params = init_sampler_params(jax.random.key(0), hidden, 3, 2)
    obs = jax.random.normal(jax.random.key(1), (4, 3))
    noise = jax.random.normal(jax.random.key(2), (4, 6, 2))
    fn = lambda p, xi: sampler_apply(p, hidden, obs, xi)  # noqa: E731
    q_fn = lambda a: -jnp.sum((a - 0.3) ** 2, -1)  # noqa: E731
    out = sqljax.sampler_svgd_gradient(fn, params, noise, q_fn, n_fixed=3)
    acts = fn(params, noise)
    phi, _ = sqljax.svgd_direction(acts[:, :3], acts[:, 3:], sqljax.target_score(q_fn, acts[:, :3]))
    np.testing.assert_allclose(out.phi, phi, rtol=1e-5, atol=1e-6)
    expected = jax.grad(lambda p: jnp.sum(phi * fn(p, noise)[:, 3:]))(params)
    for a, b in zip(jax.tree.leaves(out.grads), jax.tree.leaves(expected)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
