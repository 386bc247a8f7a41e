"""What the library refuses: batches that don't fit the learner, a stochastic action
without a key, and saving over files that are not an sqljax checkpoint."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_update import ACT, OBS, SMALL, random_batch

import sqljax


@pytest.fixture(scope="module")
def state():
    return sqljax.init(jax.random.key(0), SMALL, OBS, ACT)


def test_update_refuses_a_batch_of_another_size(state):
    short = jax.tree.map(lambda x: x[:3], random_batch(jax.random.key(1)))
    with pytest.raises(ValueError, match=f"3 transitions but config.batch_size is {SMALL.batch_size}"):
        sqljax.update(state, short)


@pytest.mark.parametrize("field", ["obs", "action", "reward", "next_obs", "terminated"])
def test_update_refuses_integer_arrays(state, field):
    b = random_batch(jax.random.key(1))
    bad = b._replace(**{field: getattr(b, field).astype(jnp.int32)})
    with pytest.raises(TypeError, match=f"batch.{field} has dtype int32"):
        jax.jit(sqljax.update)(state, bad)


def test_bool_terminated_is_the_same_as_float(state):
    b = random_batch(jax.random.key(1))
    _, m_float = jax.jit(sqljax.update)(state, b)
    _, m_bool = jax.jit(sqljax.update)(state, b._replace(terminated=b.terminated > 0.5))
    assert float(m_float["target_mean"]) == float(m_bool["target_mean"])


def test_nan_reward_shows_in_the_loss(state):
    """Values are not checked (documented): a NaN reward gives a non-finite q_loss, which
    is what a caller (and sqljax's drivers) checks."""
    b = random_batch(jax.random.key(1))
    _, m = jax.jit(sqljax.update)(state, b._replace(reward=b.reward.at[0].set(jnp.nan)))
    assert not np.isfinite(float(m["q_loss"]))


def test_stochastic_actions_need_a_key(state):
    obs = np.zeros((2, OBS), np.float32)
    with pytest.raises(ValueError, match="needs a PRNG key"):
        sqljax.sample_actions(state, obs, None)
    assert sqljax.sample_actions(state, obs, None, deterministic=True).shape == (2, ACT)


def test_saving_never_deletes_foreign_files(tmp_path, state):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    (tmp_path / "file").write_text("keep me too")
    for target in ("mine", "file"):
        for save in (sqljax.save_checkpoint, sqljax.export_learner):
            with pytest.raises(sqljax.CheckpointError, match=f"refusing to save to .*{target}"):
                save(tmp_path / target, state)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert (tmp_path / "file").read_text() == "keep me too"
    # An earlier checkpoint (either kind) and an empty directory are replaced.
    (tmp_path / "empty").mkdir()
    sqljax.save_checkpoint(tmp_path / "empty", state)
    sqljax.export_learner(tmp_path / "empty", state)
    sqljax.save_checkpoint(tmp_path / "empty", state)
    assert sqljax.load_checkpoint(tmp_path / "empty").config == SMALL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "file", "mine"]
