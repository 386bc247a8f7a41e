import jax
import jax.numpy as jnp
import numpy as np

from sqljax import Batch, replay


def transition(i, obs=3, act=2):
    i = jnp.asarray(i, jnp.float32)
    return Batch(jnp.full(obs, i), jnp.full(act, i), i, jnp.full(obs, i + 0.5), i % 2)


def example():
    return transition(0)


def test_add_sample_and_wraparound():
    buf = replay.init(5, example())
    assert int(replay.size(buf)) == 0 and replay.capacity(buf) == 5
    add = jax.jit(replay.add, donate_argnums=0)
    for i in range(3):
        buf = add(buf, transition(i))
    assert int(replay.size(buf)) == 3
    s = jax.vmap(lambda k: replay.sample(buf, k, 4))(jax.random.split(jax.random.key(0), 300))
    vals, counts = np.unique(np.asarray(s.reward), return_counts=True)
    assert list(vals) == [0.0, 1.0, 2.0]
    assert counts.min() > 0.25 * counts.sum()  # uniform over what is stored
    # fields stay aligned within a transition
    np.testing.assert_array_equal(s.obs[..., 0], s.reward)
    np.testing.assert_array_equal(s.next_obs[..., 0], s.reward + 0.5)
    np.testing.assert_array_equal(s.terminated, s.reward % 2)
    many = jax.tree.map(lambda *x: jnp.stack(x), *[transition(i) for i in range(10, 14)])
    buf = jax.jit(replay.add_batch, donate_argnums=0)(buf, many)
    assert int(replay.size(buf)) == 5
    # the two oldest (0, 1) were overwritten, in order
    assert sorted(np.asarray(buf.experience.reward).ravel().tolist()) == [2.0, 10.0, 11.0, 12.0, 13.0]


def test_vmap_over_seeds():
    bufs = jax.vmap(lambda _: replay.init(8, example()))(jnp.arange(3))
    items = jax.vmap(lambda s: transition(s))(jnp.arange(3.0))
    bufs = jax.jit(jax.vmap(replay.add))(bufs, items)
    out = jax.vmap(replay.sample, in_axes=(0, 0, None))(bufs, jax.random.split(jax.random.key(0), 3), 2)
    np.testing.assert_array_equal(out.reward, [[0, 0], [1, 1], [2, 2]])
