"""melodygen's fast loop against the chapter's own, tiny real models."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import CHAPTER_SEQ, NABIYA
from melodygen.notation import parse_song, read_song

training = pytest.importorskip("melodygen.training")
from melodygen import chapter, encoding, generation, models  # noqa: E402

UNITS = 16


def dataset(spec, songs, window=4):
    vocab = encoding.Vocabulary.from_songs(songs)
    table = encoding.input_table(vocab, spec.inputs)
    data = training.make_dataset([[vocab.index(t) for t in s] for s in songs], table, window, spec)
    return vocab, table, data


def twin_models(spec, vocab_size, seed=1):
    """Two models with the same initial weights."""
    training.keras.utils.set_random_seed(seed)
    a = models.build(spec, vocab_size, 4, UNITS)
    b = models.build(spec, vocab_size, 4, UNITS)
    b.set_weights(a.get_weights())
    return a, b


def largest_difference(a, b) -> float:
    return max(np.abs(x - y).max() for x, y in zip(a, b, strict=True))


def assert_same_weights(a, b):
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(wa, wb, rtol=1e-4, atol=2e-6)


@pytest.mark.parametrize("kind", ["mlp", "lstm", "stateful", "stateful-features"])
def test_same_weights_as_the_chapters_loop(kind):
    spec = models.SPECS[kind]
    vocab, _, data = dataset(spec, [CHAPTER_SEQ])
    theirs, ours = twin_models(spec, len(vocab))
    initial = ours.get_weights()
    chapter.compile_model(theirs)
    their_losses = chapter.fit(theirs, spec, data, epochs=3, seed=7)
    history = training.Trainer(ours, spec, data, seed=7).fit(3)
    assert_same_weights(theirs, ours)
    np.testing.assert_allclose(history.loss, their_losses, rtol=1e-5)
    assert (
        max(np.abs(a - b).max() for a, b in zip(initial, ours.get_weights(), strict=False)) > 1e-3
    )


def test_stateful_state_is_reset_at_each_epoch_and_between_songs():
    """Two songs, two epochs: equal to fit(song, batch 1, shuffle=False) with reset_states()
    after each song, the chapter's procedure extended to several songs."""
    spec = models.SPECS["stateful"]
    songs = [CHAPTER_SEQ[:20], CHAPTER_SEQ[20:]]
    vocab, table, data = dataset(spec, songs)
    theirs, ours = twin_models(spec, len(vocab))
    chapter.compile_model(theirs)
    for _ in range(2):
        for song in songs:
            w, y = encoding.windows([vocab.index(t) for t in song], 4)
            theirs.fit(
                table[w], encoding.one_hot(y, len(vocab)), batch_size=1, shuffle=False, verbose=0
            )
            training.reset_states(theirs)
    training.Trainer(ours, spec, data, seed=0).fit(2)
    assert_same_weights(theirs, ours)
    # and without the reset between songs, the weights would differ
    carried, _ = twin_models(spec, len(vocab))
    chapter.compile_model(carried)
    for _ in range(2):
        carried.fit(data.x, data.y_one_hot, batch_size=1, shuffle=False, verbose=0)
        training.reset_states(carried)
    assert (
        max(
            np.abs(a - b).max()
            for a, b in zip(carried.get_weights(), ours.get_weights(), strict=False)
        )
        > 1e-4
    )


@pytest.mark.parametrize("kind", ["mlp", "lstm", "stateful", "stateful-features"])
def test_numpy_forward_equals_keras_over_a_whole_song(kind):
    spec = models.SPECS[kind]
    song = read_song(NABIYA)
    trained = training.train([song], training.TrainConfig(kind, units=UNITS, epochs=3, seed=3))
    table = encoding.input_table(trained.vocab, spec.inputs)
    indices = [trained.vocab.index(t) for t in song.tokens]
    w, _ = encoding.windows(indices, 4)
    x = table[w]
    x = x.reshape(len(x), -1) if not spec.recurrent else x
    training.reset_states(trained.model)
    theirs = trained.model.predict(x, batch_size=spec.batch_size, verbose=0)  # state carried
    training.reset_states(trained.model)
    forward = models.Forward(spec, trained.weights)
    forward.reset()
    ours = np.stack([forward.step(table[window]) for window in w])
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    if spec.stateful:  # the state matters: resetting before every window changes the output
        fresh = np.stack(
            [models.Forward(spec, trained.weights).step(table[window]) for window in w]
        )
        assert np.abs(fresh - ours).max() > 1e-4


def test_full_song_prediction_is_the_chapters_loop():
    spec = models.SPECS["stateful"]
    song = read_song(NABIYA)
    trained = training.train([song], training.TrainConfig("stateful", units=UNITS, epochs=5))
    table = encoding.input_table(trained.vocab, spec.inputs)
    seed = [trained.vocab.index(t) for t in song.tokens[:4]]
    theirs = chapter.continue_melody(trained.model, table, seed, 50, 4)
    ours = generation.continue_melody(models.Forward(spec, trained.weights), table, seed, 50, 4)
    assert ours == theirs


def test_until_perfect_stops_when_every_window_is_right():
    song = parse_song("c4 d4 e4 f4 g4 a4 b4 c'4 b4 a4 g4 f4 e4 d4 c2")
    config = training.TrainConfig("stateful", units=32, epochs=400, seed=1, until_perfect=True)
    trained = training.train([song], config)
    stopped = trained.history.perfect_at
    assert stopped is not None and stopped == trained.history.epochs_run < 400
    spec = config.spec
    table = encoding.input_table(trained.vocab, spec.inputs)
    indices = [trained.vocab.index(t) for t in song.tokens]
    prediction = generation.predict_song(models.Forward(spec, trained.weights), table, indices, 4)
    assert prediction.correct("one_step") == prediction.correct("full_song") == len(indices) - 4


def test_same_seed_same_training():
    song = read_song(NABIYA)
    a, b = (
        training.train([song], training.TrainConfig("mlp", units=UNITS, epochs=4, seed=9))
        for _ in range(2)
    )
    c = training.train([song], training.TrainConfig("mlp", units=UNITS, epochs=4, seed=10))
    assert a.history.loss == b.history.loss
    assert all(np.array_equal(x, y) for x, y in zip(a.weights, b.weights, strict=True))
    assert a.history.loss != c.history.loss


def test_short_song_is_a_clear_error():
    from melodygen.errors import MelodygenError

    with pytest.raises(MelodygenError, match="too short to train on"):
        training.train(
            [parse_song("c4 d4 e4 f4", source="short.txt")], training.TrainConfig(epochs=1)
        )
