"""melodygen's fast loop against the chapter's own, tiny real models."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import CHAPTER_SEQ, NABIYA
from melodygen import encoding, generation, store, training
from melodygen.errors import BadInput
from melodygen.kinds import CHAPTER_KINDS, KINDS, Model, chapter, window
from melodygen.kinds.window import STATEFUL, Trainer, WindowLSTM
from melodygen.notation import parse_song, read_song

UNITS = 16


def dataset(kind, songs, size=4):
    vocab = encoding.Vocabulary.from_songs(songs)
    table = window.input_table(vocab, kind.inputs)
    data = window.make_dataset([[vocab.index(t) for t in s] for s in songs], table, size)
    return vocab, table, data


def twin_models(kind, vocab_size, seed=1):
    """Two models with the same initial weights."""
    _, keras = training.setup_tensorflow()
    keras.utils.set_random_seed(seed)
    a = kind.build(kind.spec.replace(units=UNITS), vocab_size)
    b = kind.build(kind.spec.replace(units=UNITS), vocab_size)
    b.set_weights(a.get_weights())
    return a, b


def assert_same_weights(a, b):
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(wa, wb, rtol=1e-4, atol=2e-6)


@pytest.mark.parametrize("name", CHAPTER_KINDS)
def test_same_weights_as_the_chapters_loop(name):
    kind = KINDS[name]
    vocab, _, data = dataset(kind, [CHAPTER_SEQ])
    theirs, ours = twin_models(kind, len(vocab))
    initial = ours.get_weights()
    chapter.compile_model(theirs)
    their_losses = chapter.fit(theirs, kind, data, epochs=3, seed=7)
    history = Trainer(ours, kind, data, kind.spec, seed=7).fit(3)
    assert_same_weights(theirs, ours)
    np.testing.assert_allclose(history.loss, their_losses, rtol=1e-5)
    moved = max(np.abs(a - b).max() for a, b in zip(initial, ours.get_weights(), strict=True))
    assert moved > 1e-3


def test_stateful_state_is_reset_at_each_epoch_and_between_songs():
    """Two songs, two epochs: equal to fit(song, batch 1, shuffle=False) with reset_states()
    after each song, the chapter's procedure extended to several songs."""
    kind = KINDS["stateful"]
    songs = [CHAPTER_SEQ[:20], CHAPTER_SEQ[20:]]
    vocab, table, data = dataset(kind, songs)
    theirs, ours = twin_models(kind, len(vocab))
    chapter.compile_model(theirs)
    for _ in range(2):
        for song in songs:
            w, y = window.windows([vocab.index(t) for t in song], 4)
            theirs.fit(
                table[w], window.one_hot(y, len(vocab)), batch_size=1, shuffle=False, verbose=0
            )
            window.reset_states(theirs)
    Trainer(ours, kind, data, kind.spec, seed=0).fit(2)
    assert_same_weights(theirs, ours)
    # and without the reset between songs, the weights would differ
    carried, _ = twin_models(kind, len(vocab))
    chapter.compile_model(carried)
    for _ in range(2):
        carried.fit(data.x, data.y_one_hot, batch_size=1, shuffle=False, verbose=0)
        window.reset_states(carried)
    differ = max(
        np.abs(a - b).max() for a, b in zip(carried.get_weights(), ours.get_weights(), strict=True)
    )
    assert differ > 1e-4


def saved(path):
    """A model directory's Keras model (model.keras) and numpy model (weights.npz)."""
    _, keras = training.setup_tensorflow()
    return keras.models.load_model(path / "model.keras"), store.load(path).model


@pytest.mark.parametrize("name", CHAPTER_KINDS)
def test_numpy_forward_equals_keras_over_a_whole_song(trained_models, name):
    kind = KINDS[name]
    keras_model, model = saved(trained_models[name])
    vocab = model.vocab
    table = window.input_table(vocab, kind.inputs)
    indices = [vocab.index(t) for t in read_song(NABIYA).tokens]
    w, _ = window.windows(indices, 4)
    window.reset_states(keras_model)
    theirs = keras_model.predict(table[w], batch_size=kind.spec.batch, verbose=0)
    predictor = model.predictor()
    predictor.reset(1)
    ours = [np.exp(predictor.feed(np.array([i])))[0] for i in indices[:-1]]
    np.testing.assert_allclose(np.stack(ours[3:]), theirs, atol=1e-5)
    if kind.stateful:  # the state matters: without it the output changes
        stateless = WindowLSTM("stateless", kind.spec, stateful=False, inputs=kind.inputs)
        predictor = Model(stateless, model.spec, vocab, model.weights).predictor()
        predictor.reset(1)
        fresh = [np.exp(predictor.feed(np.array([i])))[0] for i in indices[:-1]]
        assert np.abs(np.stack(fresh[3:]) - theirs).max() > 1e-4


def test_start_of_song_context_is_what_the_window_holds(trained_models):
    """Before a full window, an LSTM reads the tokens so far from a zero state: the first
    token's distribution is the softmax of the output bias alone."""
    model = store.load(trained_models["lstm"]).model
    first = np.exp(model.predictor().reset(2))
    bias = model.weights[-1].astype(np.float64)
    expected = np.exp(bias - bias.max()) / np.exp(bias - bias.max()).sum()
    np.testing.assert_allclose(first, np.stack([expected, expected]), atol=1e-6)


def test_full_song_prediction_is_the_chapters_loop(trained_models):
    keras_model, model = saved(trained_models["stateful"])
    vocab = model.vocab
    table = window.input_table(vocab, "index")
    seed = [vocab.index(t) for t in read_song(NABIYA).tokens[:4]]
    theirs = chapter.continue_melody(keras_model, table, seed, 24, 4)  # a predict per note
    ours = generation.sample(model, seed, [None], limits=generation.Limits(length=24))[0]
    assert seed + ours == theirs


def test_stateful_streams_deal_songs_longest_first_to_the_shortest_stream():
    starts = np.zeros(14, bool)
    starts[[0, 3, 8, 10]] = True  # songs of 3, 5, 2 and 4 windows
    lanes = window.streams(starts, 2)
    assert lanes.T.tolist() == [[3, 4, 5, 6, 7, 8, 9], [0, 1, 2, 10, 11, 12, 13]]
    assert window.streams(starts, 3).T.tolist() == [
        [3, 4, 5, 6, 7], [10, 11, 12, 13, -1], [0, 1, 2, 8, 9],
    ]  # fmt: skip
    assert window.streams(starts, 1)[:, 0].tolist() == list(range(14))  # the chapter's order


def test_short_song_is_a_clear_error():
    with pytest.raises(BadInput, match="too short to train on"):
        song = parse_song("c4 d4 e4 f4", source="short.txt")
        training.train(STATEFUL, STATEFUL.spec.replace(epochs=1), [song], seed=5)
