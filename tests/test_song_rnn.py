"""The whole-song RNN: its numpy forward pass against Keras, its batches of songs, the
distributed path, and composing whole tunes without TensorFlow."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import mido
import numpy as np
import pretty_midi
import pytest

from conftest import FIXTURES, assert_same_weights, invoke, saved_weights, tokens
from melodygen import corpus, store, training
from melodygen.encoding import Start, transpose
from melodygen.evaluation import song_rhythm
from melodygen.kinds import song_rnn
from melodygen.kinds.song_rnn import PLAIN_LENGTH_IDS, SONG_RNN, Repeats
from melodygen.notation import parse_song, parse_token

TINY = SONG_RNN.spec.replace(units=16, embedding=8, layers=2, epochs=2, batch=8, steps=1)


@pytest.fixture(scope="module")
def slice_songs(essen_slice):
    return corpus.split(corpus.read([essen_slice]).songs, 0.1)


@pytest.fixture(scope="module")
def trained(slice_songs):
    train, valid = slice_songs
    spec = TINY.replace(transpose=(-2, 2), dropout=0.2)
    return training.train(SONG_RNN, spec, train, seed=3, valid=valid)


def assert_numpy_equals_keras(trained, songs, atol: float = 2e-6) -> None:
    """The numpy predictor, told each song's meter and bar lines, gives Keras's probabilities
    over the whole song."""
    model, keras_model = trained.model, trained.keras_model
    starts = [Start.of(song, estimate=True) for song in songs]
    data = song_rnn.song_data([[song.notes] for song in songs], model.vocab, starts, model.spec)
    for song, start, ids in zip(songs, starts, data.inputs, strict=True):
        states = len(model.kind.state_names(model.spec))
        zeros = [np.zeros((1, model.spec.units), np.float32)] * states
        out = keras_model([ids[0][None], *zeros], training=False)
        logits = (out[0] if states else out)[0].numpy()  # Keras gives a lone output bare
        theirs = np.exp(logits - logits.max(1, keepdims=True))
        theirs /= theirs.sum(1, keepdims=True)
        predictor = model.predictor()
        indices = model.vocab.encode(song.tokens)
        ours = [predictor.reset(1, [start])] + [predictor.feed(np.array([i])) for i in indices]
        np.testing.assert_allclose(np.exp(np.concatenate(ours)), theirs, atol=atol)


def test_numpy_forward_equals_keras_over_whole_songs(trained, slice_songs):
    assert_numpy_equals_keras(trained, slice_songs[1][:3])
    assert trained.model.spec.meter == "counters"  # the default: a fixed table, not learned
    np.testing.assert_array_equal(trained.model.weights[5], song_rnn.counters())


@pytest.mark.parametrize(("meter", "key"), [("embedding", False), ("downbeat", True),
                                           ("none", True)])  # fmt: skip
def test_every_way_of_telling_it_trains_and_its_numpy_forward_equals_keras(slice_songs, meter,
                                                                           key):  # fmt: skip
    """(counters without the key, the default: the test above, where counters are shown to be
    a fixed table, never learned; none without the key: the release's, which
    test_training_gives_the_weights_an_earlier_release_gave and tests/data/models check.)"""
    songs = [s for s in slice_songs[0] if s.time][:10]
    spec = TINY.replace(epochs=1, meter=meter, key=key, transpose=(-1, 1))
    trained = training.train(SONG_RNN, spec, songs, seed=3)
    assert_numpy_equals_keras(trained, songs[:3])
    assert len(trained.model.weights) == len(SONG_RNN.weight_shapes(trained.model.spec, 1))


def test_repeats_find_where_the_song_repeated_itself():
    """The latest earlier occurrence of the longest suffix, and the token that followed it."""
    song = [1, 2, 3, 9, 1, 2, 3, 7, 2, 3]
    tracker, seen = Repeats(1), []
    for token in [*song, None]:
        follow, length = tracker.following()
        seen.append((int(follow[0]), int(length[0])))
        if token is not None:
            tracker.push(np.array([token]))
    assert seen[:5] == [(-1, 0), (-1, 0), (-1, 0), (-1, 0), (-1, 0)]  # nothing repeats yet
    assert seen[5] == (2, 1)  # after "1": "1" was followed by 2
    assert seen[7] == (9, 3)  # after "1 2 3": it was followed by 9
    assert seen[8] == (-1, 0)  # "7" is new
    assert seen[10] == (7, 2)  # "2 3": its latest occurrence was followed by 7, not 9
    whole = song_rnn.repeats([song])[0]
    assert [(song[a] if a >= 0 else -1, n) for a, n in zip(*whole, strict=True)] == seen


def test_training_reads_every_song_and_learns(trained, slice_songs):
    history = trained.history
    assert history.epochs_run == 2 and len(history.valid_loss) == 2
    assert history.loss[1] < history.loss[0]
    vocab = trained.model.vocab
    assert vocab.tokens[-2:] == ("<end>", "<unk>")
    # the vocabulary covers every training song moved by -2..2 semitones, spelled for its key
    for song in slice_songs[0]:
        for k in range(-2, 3):
            assert {n.token for n in transpose(song.notes, k)} <= set(vocab.tokens)


def test_batches_group_songs_by_length_and_depend_on_the_seed(trained, slice_songs):
    vocab, variants = song_rnn.song_vocabulary(slice_songs[0], SONG_RNN.specials, (-2, 2))
    data = song_rnn.song_data(variants, vocab)
    batches = list(song_rnn.song_batches(3, 0, data, 8))
    assert sum(len(x) for x, _, _ in batches) == len(slice_songs[0])
    padding = 1 - sum(m.sum() for _, _, m in batches) / sum(m.size for _, _, m in batches)
    assert padding < 0.1  # songs of similar lengths together
    for x, y, mask in batches:
        assert (y[mask == 0] == 0).all() and (x[:, 0, 0] == 129).all()  # <start> first
        ends = mask.sum(1).astype(int) - 1
        assert (y[np.arange(len(y)), ends] == vocab.end).all()  # each song ends with <end>
    again = list(song_rnn.song_batches(3, 0, data, 8))
    other = list(song_rnn.song_batches(3, 1, data, 8))
    assert all((a[0] == b[0]).all() for a, b in zip(batches, again, strict=True))
    assert any(
        a[0].shape != b[0].shape or (a[0] != b[0]).any()
        for a, b in zip(batches, other, strict=True)
    )


def test_a_small_collection_is_read_again_until_an_epoch_has_its_steps(slice_songs):
    """The schedule counts optimizer steps: fewer batches than ``steps`` are read several times
    an epoch, each pass drawn anew; a collection that fills the steps is read once, as before."""
    vocab, variants = song_rnn.song_vocabulary(slice_songs[0], SONG_RNN.specials, (-2, 2))
    data = song_rnn.song_data(variants, vocab)
    once = list(song_rnn.song_batches(3, 0, data, 8))
    passes = -(-10 // len(once))
    batches = list(song_rnn.song_batches(3, 0, data, 8, steps=10))
    assert len(batches) == passes * len(once) >= 10
    assert all((a[0] == b[0]).all() for a, b in zip(once, batches, strict=False))  # pass 0
    second = batches[len(once) : 2 * len(once)]
    assert any(a[0].shape != b[0].shape or (a[0] != b[0]).any()
               for a, b in zip(once, second, strict=True))  # fmt: skip
    fills = list(song_rnn.song_batches(3, 0, data, 8, steps=len(once)))
    assert len(fills) == len(once)


@pytest.fixture(scope="module")
def trained_dir(essen_slice, tmp_path_factory) -> Path:
    """A tiny song-rnn trained by `melodygen train` with its defaults otherwise."""
    root = tmp_path_factory.mktemp("song-rnn")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(store.STATE_ENV, str(root / "state"))
        result = invoke("train", essen_slice, "--model", "song-rnn", "--units", "16",
                        "--embedding", "8", "--epochs", "1", "--transpose", "0", "--steps", "1",
                        "-o", root / "m")  # fmt: skip
    assert result.exit_code == 0, result.output
    return root / "m"


def test_compose_a_whole_tune_without_a_seed_and_without_tensorflow(cli, trained_dir, tmp_path):
    shutil.copytree(trained_dir, tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "melodygen.json").read_text())
    assert meta["model"] == "song-rnn"  # the default from 20 songs on
    assert meta["spec"]["meter"] == "counters"  # told the meter, by default
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "melodygen", "compose", "--model", "m",
         "--random-seed", "1", "--length", "300"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert not {m for m in imported if m.split(".")[0] in ("tensorflow", "keras")}
    printed = tokens(proc.stdout)
    assert 0 < len(printed) < 300  # it sampled (its default) and stopped at <end>, as a tune does
    assert proc.stdout == cli("compose", "--model", "m", "--temperature", "1", "--random-seed",
                              "1", "--length", "300").stdout  # fmt: skip
    drawn = cli("compose", "--model", "m", "--length", "40")  # a seed drawn and told
    seed = re.search(r"random seed (\d+) \(pass --random-seed \1 to repeat\)", drawn.stderr)
    assert seed, drawn.stderr
    again = cli("compose", "--model", "m", "--length", "40", "--random-seed", seed[1])
    assert again.stdout == drawn.stdout and "random seed" not in again.stderr


def test_compose_in_a_meter_the_model_knows_with_bar_lines(cli, trained_dir, tmp_path):
    songs = store.load(trained_dir).meta.songs
    known = {s.time or (4, 4) for s in songs}
    refused = cli("compose", "--model", trained_dir, "--time", "7/8", "--random-seed", "1")
    assert refused.exit_code == 2 and refused.stderr.count("\n") == 1
    assert "--time: the model never saw 7/8: it knows" in refused.stderr
    waltz = (3, 4) if (3, 4) in known else sorted(known)[0]
    asked = cli("compose", "--model", trained_dir, "--time", f"{waltz[0]}/{waltz[1]}", "-n", "3",
                "--random-seed", "1", "--length", "30", "-o", "w/t.mid", "--txt")  # fmt: skip
    assert asked.exit_code == 0, asked.output
    bar = Fraction(4 * waltz[0], waltz[1])
    for k, line in enumerate(asked.stdout.splitlines(), start=1):
        song = parse_song((tmp_path / f"w/t-{k}.txt").read_text())
        assert song.time == waltz and song.tokens == tokens(line)
        signature = pretty_midi.PrettyMIDI(str(tmp_path / f"w/t-{k}.mid")).time_signature_changes
        assert (signature[0].numerator, signature[0].denominator) == waltz
        beats, bars, ends = Fraction(0), [], []  # where each | stands, where each note ends
        for word in line.split():
            if word == "|":
                bars.append(beats)
            else:
                beats += parse_token(word).length
                ends.append(beats)
        assert bars == [end for end in ends[:-1] if end % bar == 0]  # at every bar line
    kept = cli("compose", "--model", trained_dir, "-n", "4", "--random-seed", "3")
    assert kept.exit_code == 0, kept.output
    meters = re.findall(r"; (\d+/\d+), ", kept.stderr)  # each tune's line names its meter
    for meter, line in zip(meters, kept.stdout.splitlines(), strict=True):
        r = song_rhythm(parse_song(f"time: {meter}\n{line}"))
        assert r.crossing == 0 and r.whole == 1, line  # the default: in its bars
    free = cli("compose", "--model", trained_dir, "-n", "4", "--random-seed", "3", "--across-bars")
    assert free.exit_code == 0 and free.stdout != kept.stdout
    many = cli("compose", "--model", trained_dir, "-n", "8", "--random-seed", "2", "--length",
               "20", "-o", "d/t.mid")  # fmt: skip
    few = cli("compose", "--model", trained_dir, "-n", "3", "--random-seed", "2", "--length",
              "20", "-o", "e/t.mid")  # fmt: skip
    assert many.stdout.splitlines()[:3] == few.stdout.splitlines()  # tune k: its own meter
    drawn = []
    for k in range(1, 9):
        signature = pretty_midi.PrettyMIDI(str(tmp_path / f"d/t-{k}.mid")).time_signature_changes
        drawn.append((signature[0].numerator, signature[0].denominator))
    assert set(drawn) <= known and len(set(drawn)) > 1  # drawn from the training songs' meters


def test_a_model_told_the_key_composes_in_the_key_asked_for(cli, essen_slice, tmp_path):
    result = cli("train", essen_slice, "--model", "song-rnn", "--units", "16", "--embedding", "8",
                 "--epochs", "2", "--key", "--steps", "1", "-o", "k")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "k" / "melodygen.json").read_text())["spec"]["key"] is True
    args = ("compose", "--model", "k", "-n", "3", "--random-seed", "4", "--length", "25")
    plain, asked = cli(*args), cli(*args, "--key", "F#m", "-o", "f/t.mid")
    assert plain.exit_code == asked.exit_code == 0, asked.output
    assert plain.stdout != asked.stdout  # told, not moved: other tunes
    for k in (1, 2, 3):
        keys = [m.key for m in mido.MidiFile(tmp_path / f"f/t-{k}.mid").tracks[0]
                if m.type == "key_signature"]  # fmt: skip
        assert keys == ["F#m"]
    assert asked.stderr.count("in F# minor") == 3


def test_training_gives_the_weights_an_earlier_release_gave(slice_songs):
    """tests/data/models/song-rnn was trained by `melodygen train` with these settings, before
    a song-rnn was told the meter."""
    train, valid = slice_songs
    spec = TINY.replace(
        transpose=(-2, 2), dropout=0.2, meter="none", chunk=64, learning_rate=0.01, decay=0.75
    )  # that release's defaults
    trained = training.train(SONG_RNN, spec, train, seed=3, valid=valid)
    assert_same_weights(list(trained.model.weights), saved_weights(FIXTURES / "song-rnn"))


def test_the_same_random_seed_trains_the_same_weights(trained, slice_songs):
    train, valid = slice_songs
    spec = TINY.replace(transpose=(-2, 2), dropout=0.2)
    again = training.train(SONG_RNN, spec, train, seed=3, valid=valid)
    assert all(
        np.array_equal(a, b)
        for a, b in zip(trained.model.weights, again.model.weights, strict=True)
    )
    assert again.history.valid_loss == trained.history.valid_loss


def test_ties_and_triplets_train_transpose_and_match_keras():
    """Songs with ties and triplets: their tokens are learned, kept through transposition, and
    the numpy forward pass still equals Keras on them."""
    bodies = ["c4~ c8 d8 trip{e8 f8 g8} a2~ a4 r4", "trip{g4 e8} c4 d4~ d4 trip{r8 c8 d8} e2"]
    songs = [parse_song(bodies[i % 2], name=f"s{i}") for i in range(8)]
    trained = training.train(SONG_RNN, TINY.replace(epochs=1, transpose=(-1, 1)), songs, seed=3)
    vocab = trained.model.vocab
    assert {"c4~", "trip{e8}", "trip{g4}", "trip{r8}", "a2~"} <= set(vocab.tokens)
    moved = transpose(songs[0].notes, 1)
    assert [(n.tie, n.triplet) for n in moved] == [(n.tie, n.triplet) for n in songs[0].notes]
    assert {n.token for n in moved} <= set(vocab.tokens)
    assert_numpy_equals_keras(trained, songs[:2])


def test_a_model_from_before_ties_and_triplets_still_loads_and_predicts_the_same(trained):
    """Such a model has the 21 length rows of the plain lengths and <start>, <unk>, none."""
    model = trained.model
    weights = list(model.weights)
    weights[1] = weights[1][:PLAIN_LENGTH_IDS]
    model.kind.check_weights(weights, model.spec, len(model.vocab))
    old = dataclasses.replace(model, weights=tuple(weights))
    song = model.vocab.encode(["c4", "d8", "e8", "r4"])

    def last_prediction(m):
        predictor = m.predictor()
        predictor.reset(1)
        return [predictor.feed(np.array([t])) for t in song][-1]

    np.testing.assert_array_equal(last_prediction(model), last_prediction(old))
    with pytest.raises(ValueError, match="do not fit"):
        weights[1] = weights[1][:20]
        model.kind.check_weights(weights, model.spec, len(model.vocab))


def test_learning_rate_schedules_by_batch():
    """Exponential: each epoch's rate; cosine: half a cosine from the rate to 0 over the
    epochs asked for; a warm-up rises linearly to either."""
    rate = song_rnn.learning_rate
    spec = SONG_RNN.spec.replace(learning_rate=0.01, decay=0.5, epochs=4)
    assert [rate(spec, e, b, 10) for e, b in [(0, 0), (0, 9), (2, 5)]] == [0.01, 0.01, 0.0025]
    cosine = spec.replace(schedule="cosine")
    assert rate(cosine, 0, 0, 10) == 0.01 and abs(rate(cosine, 2, 0, 10) - 0.005) < 1e-12
    assert rate(cosine, 3, 9, 10) < 2e-5 and rate(cosine, 9, 0, 10) == 0
    warm = cosine.replace(warmup=20)
    assert rate(warm, 0, 4, 10) == rate(cosine, 0, 4, 10) * 5 / 20
    assert rate(warm, 2, 0, 10) == rate(cosine, 2, 0, 10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_workers_train_as_two_replicas_and_only_the_chief_writes(essen_slice, tmp_path):
    """MultiWorkerMirroredStrategy for real: two `melodygen train` processes on 127.0.0.1, each
    told its place by TF_CONFIG, train one model; the chief (worker 0) writes it, and its weights
    are those of one process training two replicas (--devices 2: MirroredStrategy over the CPU
    split in two) the same steps, which are one replica's: each replica trains on its half of
    each batch and the gradients are summed (song_rnn.SongTrainer, which the song-transformer
    shares)."""
    args = [sys.executable, "-m", "melodygen", "train", str(essen_slice), "--model", "song-rnn",
            "--units", "16", "--embedding", "8", "--epochs", "2", "--transpose", "0", "--steps",
            "1", "--dropout", "0", "--batch", "16", "-o", "m"]  # fmt: skip
    cluster = {"worker": [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]}
    runs = {}
    for name, extra, config in (
        ("chief", [], {"cluster": cluster, "task": {"type": "worker", "index": 0}}),
        ("worker", [], {"cluster": cluster, "task": {"type": "worker", "index": 1}}),
        ("two", ["--devices", "2"], None),
        ("one", [], None),
    ):
        (tmp_path / name).mkdir()
        env = {**os.environ, "MELODYGEN_STATE": str(tmp_path / name / "state")}
        env.pop("TF_CONFIG", None)
        if config:
            env["TF_CONFIG"] = json.dumps(config)
        runs[name] = subprocess.Popen([*args, *extra], cwd=tmp_path / name, env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        said = {name: proc.communicate(timeout=120) for name, proc in runs.items()}
    finally:
        for proc in runs.values():
            proc.kill()
    for name, proc in runs.items():
        assert proc.returncode == 0, (name, said[name][1][-2000:])
    assert "its chief writes the model" in said["worker"][0]
    assert not any((tmp_path / "worker").iterdir())  # nothing: no model, checkpoint or state
    chief, two, one = (saved_weights(tmp_path / name / "m") for name in ("chief", "two", "one"))
    for a, b in ((chief, two), (two, one)):
        assert max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True)) < 1e-5
    assert max(float(np.abs(w).max()) for w in one) > 0.1  # trained weights, not zeros
    assert sorted(p.name for p in (tmp_path / "chief" / "m").iterdir()) == sorted(
        p.name for p in (tmp_path / "two" / "m").iterdir()
    )
