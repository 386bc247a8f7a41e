import json

import jax
import numpy as np
import pytest
from test_update import ACT, OBS, SMALL, random_batch

import sqljax
from sqljax import replay


def trained(n=3):
    s = sqljax.init(jax.random.key(0), SMALL, OBS, ACT)
    up = jax.jit(sqljax.update)
    for i in range(n):
        s, _ = up(s, random_batch(jax.random.key(i)))
    return s


def test_round_trip_continues_bit_for_bit(tmp_path):
    s = trained()
    path = sqljax.save_checkpoint(tmp_path / "ckpt", s)
    r = sqljax.load_checkpoint(path)
    assert r.config == s.config
    assert jax.tree.structure(r) == jax.tree.structure(s)  # optax states, not dicts
    up = jax.jit(sqljax.update)
    for i in range(3):
        b = random_batch(jax.random.key(50 + i))
        s, ms = up(s, b)
        r, mr = up(r, b)
    for a, b in zip(jax.tree.leaves(s), jax.tree.leaves(r)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ms["q_loss"], mr["q_loss"])


def test_extra_and_metadata_round_trip_and_overwrite(tmp_path):
    s = trained(1)
    buf = replay.init(10, sqljax.Batch(np.zeros(OBS), np.zeros(ACT), 0.0, np.zeros(OBS), 0.0))
    buf = replay.add(buf, sqljax.Batch(np.ones(OBS), np.ones(ACT), 2.0, np.ones(OBS), 1.0))
    extra = {"replay": buf, "env_steps": np.asarray(7)}
    p = sqljax.save_checkpoint(tmp_path / "c", s, extra=extra, metadata={"note": "x"})
    sqljax.save_checkpoint(tmp_path / "c", s, extra=extra, metadata={"note": "y"})  # replace
    assert sqljax.read_checkpoint_metadata(p)["metadata"] == {"note": "y"}
    got = sqljax.load_extra(p, extra)
    assert type(got["replay"]) is type(buf)
    assert int(got["env_steps"]) == 7 and int(replay.size(got["replay"])) == 1
    np.testing.assert_array_equal(got["replay"].experience.reward, buf.experience.reward)
    assert [x.name for x in tmp_path.iterdir()] == ["c"]  # no temporary directories left


def test_bad_checkpoints_raise_clear_errors(tmp_path):
    with pytest.raises(sqljax.CheckpointError, match="does not exist"):
        sqljax.load_checkpoint(tmp_path / "missing")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "data.txt").write_text("hello")
    with pytest.raises(sqljax.CheckpointError, match="not an sqljax checkpoint"):
        sqljax.load_checkpoint(tmp_path / "foreign")
    p = sqljax.save_checkpoint(tmp_path / "ok", trained(1))
    meta_file = p / "sqljax.json"
    text = meta_file.read_text()
    meta_file.write_text(text[: len(text) // 2])  # truncated JSON
    with pytest.raises(sqljax.CheckpointError, match="unreadable or truncated"):
        sqljax.load_checkpoint(p)
    meta = json.loads(text)
    meta["format"] = "other"
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(sqljax.CheckpointError, match="not an sqljax checkpoint"):
        sqljax.load_checkpoint(p)
    meta_file.write_text(text)
    # damaged array data
    for f in (p / "state").rglob("*"):
        if f.is_file() and f.stat().st_size > 1000:
            f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(sqljax.CheckpointError, match="could not restore"):
        sqljax.load_checkpoint(p)
    # sizes that do not match the stored arrays
    p2 = sqljax.save_checkpoint(tmp_path / "ok2", trained(1))
    meta = json.loads((p2 / "sqljax.json").read_text())
    meta["obs_dim"] = OBS + 4
    (p2 / "sqljax.json").write_text(json.dumps(meta))
    with pytest.raises(sqljax.CheckpointError, match="could not restore"):
        sqljax.load_checkpoint(p2)
    with pytest.raises(sqljax.CheckpointError, match="file, not a checkpoint"):
        sqljax.load_checkpoint(meta_file)


def test_stacked_seed_states_round_trip(tmp_path):
    states = jax.vmap(lambda k: sqljax.init(k, SMALL, OBS, ACT))(jax.random.split(jax.random.key(0), 3))
    batches = jax.vmap(random_batch)(jax.random.split(jax.random.key(1), 3))
    states, _ = jax.jit(jax.vmap(sqljax.update))(states, batches)
    p = sqljax.save_checkpoint(tmp_path / "stacked", states)
    assert sqljax.read_checkpoint_metadata(p)["batch_shape"] == [3]
    r = sqljax.load_checkpoint(p)
    assert jax.tree.structure(r) == jax.tree.structure(states)
    for a, b in zip(jax.tree.leaves(r), jax.tree.leaves(states)):
        np.testing.assert_array_equal(a, b)


def test_restored_replay_has_the_same_types_as_a_fresh_one(tmp_path):
    s = trained(1)
    fresh = replay.init(4, sqljax.Batch(np.zeros(OBS), np.zeros(ACT), 0.0, np.zeros(OBS), 0.0))
    p = sqljax.save_checkpoint(tmp_path / "c", s, extra={"replay": fresh})
    got = sqljax.load_extra(p, {"replay": fresh})["replay"]
    avals = lambda t: [jax.typeof(x) for x in jax.tree.leaves(t)]  # noqa: E731
    assert avals(got) == avals(fresh)
