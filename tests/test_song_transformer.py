"""The attention kind: its numpy forward pass (a key/value cache, one position per token)
against Keras over whole songs, its sizes checked, and fine-tuning from one."""

from __future__ import annotations

import numpy as np
import pytest
from test_song_rnn import assert_numpy_equals_keras

from melodygen import corpus, generation, training
from melodygen.errors import BadInput
from melodygen.kinds import Model
from melodygen.kinds.song_transformer import SONG_TRANSFORMER

TINY = SONG_TRANSFORMER.spec.replace(units=16, heads=2, embedding=8, layers=2, epochs=2,
                                     batch=8, steps=1, warmup=4, transpose=(-1, 1))  # fmt: skip


@pytest.fixture(scope="module")
def songs(essen_slice):
    return corpus.split(corpus.read([essen_slice]).songs, 0.1)


@pytest.fixture(scope="module")
def trained(songs):
    return training.train(SONG_TRANSFORMER, TINY.replace(key=True), songs[0], seed=3,
                          valid=songs[1])  # fmt: skip


def test_numpy_forward_with_a_cache_equals_keras_over_whole_songs(trained, songs):
    """Songs longer than the cache's first 16 places, so that it grows; told the meter and
    the key, as a song-rnn can be. (Songs without unknown tokens: a predictor fed <unk> cannot
    know how long it lasts, and so loses the place in the bar that Keras is told.)"""
    known = [s for s in songs[1] if trained.model.vocab.unknown not in
             trained.model.vocab.encode(s.tokens)]  # fmt: skip
    long = sorted(known, key=lambda s: -len(s.notes))[:3]
    assert len(long[0].notes) > 16
    assert_numpy_equals_keras(trained, long, atol=1e-5)
    history = trained.history
    assert history.epochs_run == 2 and len(history.valid_pitch_bits) == 2
    assert history.valid_loss[-1] < history.valid_loss[0]


def test_a_batch_keeps_each_songs_cache_when_rows_are_selected(trained, songs):
    """Two songs read side by side, the first dropped after three tokens: the second's
    predictions stay those it has read alone."""
    model = trained.model
    a, b = (model.vocab.encode(s.tokens[:6]) for s in songs[0][:2])
    alone = model.predictor()
    expected = [alone.reset(1)] + [alone.feed(np.array([t])) for t in b]
    together = model.predictor()
    got = [together.reset(2)[1:]]
    for k, (x, y) in enumerate(zip(a, b, strict=True)):
        if k == 3:
            together.select(np.array([1]))
        got.append(together.feed(np.array([x, y] if k < 3 else [y]))[-1:])
    np.testing.assert_allclose(np.concatenate(got), np.concatenate(expected), atol=1e-6)


def test_heads_must_split_the_width_evenly():
    with pytest.raises(BadInput, match="split units") as raised:
        SONG_TRANSFORMER.spec.replace(units=18, heads=2)
    assert raised.value.parameter == "heads"
    assert SONG_TRANSFORMER.spec.schedule == "cosine"


def test_fine_tuning_starts_from_the_base_weights(trained, songs):
    """``train --from``: the base's weights are the start, the settings fine-tuning's."""
    base = trained.model
    spec = SONG_TRANSFORMER.tuned_spec(base.spec).replace(epochs=1, steps=1)
    tuned = training.train(SONG_TRANSFORMER, spec, songs[1], seed=4, base=base)
    assert len(tuned.model.weights) == len(base.weights)
    moved = [np.abs(t - b).max() for t, b in zip(tuned.model.weights, base.weights, strict=True)
             if t.shape == b.shape]  # fmt: skip
    assert 0 < max(moved) < 0.1  # one epoch at a fine-tuning rate from the base
    assert isinstance(tuned.model, Model)


def test_tune_k_is_the_same_whatever_the_count(trained):
    """Side by side in one batch, each tune from its own random stream (numpy only)."""
    model, sampling = trained.model, generation.Sampling(temperature=1.0)
    limits = generation.Limits(length=40)
    streams = [np.random.default_rng([7, k]) for k in range(1, 41)]
    many = generation.sample(model, [], streams, sampling, limits)
    one = generation.sample(model, [], [np.random.default_rng([7, 1])], sampling, limits)
    assert one[0] == many[0] and len({tuple(t) for t in many}) > 30
    assert all(0 < len(t) <= 40 for t in many)
