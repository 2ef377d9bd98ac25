"""compose: the chapter's full-song loop on numpy, sampling, MIDI out, and its errors."""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import sys
import wave

import matplotlib.image
import mido
import numpy as np
import pretty_midi
import pytest

from conftest import FIXTURES, NABIYA, invoke, numpy_model, saved_weights, tokens
from melodygen import generation, store
from melodygen.evaluation import song_rhythm
from melodygen.generation import (
    CopyIndex,
    Limits,
    Sampling,
    beam_search,
    choose,
    choose_rows,
    sample,
)
from melodygen.kinds import layers
from melodygen.midi import PPQ
from melodygen.notation import parse_song, parse_token


@pytest.fixture
def trained(model_copy):
    """A tiny stateful model on nabiya, recorded as the latest model."""
    return model_copy("stateful")


def test_compose_prints_tokens_and_writes_the_same_notes(cli, trained, tmp_path):
    result = cli("compose", "--seed", "g8,e8,e4,f8", "-o", "out.mid")
    assert result.exit_code == 0, result.output
    assert f"model {trained}" in result.stderr
    printed = tokens(result.stdout)
    assert len(printed) == 54 and printed[:4] == ["g8", "e8", "e4", "f8"]
    pm = pretty_midi.PrettyMIDI(str(tmp_path / "out.mid"))
    notes = [parse_token(t) for t in printed if not t.startswith("r")]
    assert [n.pitch for n in pm.instruments[0].notes] == [n.midi_pitch for n in notes]
    ticks = [pm.time_to_tick(n.end) - pm.time_to_tick(n.start) for n in pm.instruments[0].notes]
    assert ticks == [round(n.beats * PPQ) for n in notes]
    assert pm.time_signature_changes[0].numerator == 2  # the song's 2/4


def test_length_tempo_program_and_a_longer_seed(cli, trained, tmp_path):
    seed = "g8,e8,e4,f8,d8,d4,c8"
    result = cli("compose", "--seed", seed, "--length", "5", "--tempo", "90", "--program", "73",
                 "-o", "short.mid", "--model", trained)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert tokens(result.stdout)[:7] == seed.split(",") and len(tokens(result.stdout)) == 12
    pm = pretty_midi.PrettyMIDI(str(tmp_path / "short.mid"))
    assert pm.instruments[0].program == 73
    assert pm.get_tempo_changes()[1][0] == pytest.approx(90, abs=1e-3)
    assert tokens(cli("compose", "--seed", seed, "--length", "0").stdout) == seed.split(",")


def test_sampling_is_reproducible_with_a_random_seed(cli, tmp_path):
    numpy_model(tmp_path / "m", units=16, seed=1)  # random weights: sampling has choices
    args = ("compose", "--model", "m", "--seed", "g8 e8 e4 f8", "--temperature", "1.5",
            "--length", "40")  # fmt: skip
    first = cli(*args, "--random-seed", "3", "-o", "a.mid")
    again = cli(*args, "--random-seed", "3", "-o", "b.mid")
    other = cli(*args, "--random-seed", "4", "-o", "c.mid")
    assert first.exit_code == again.exit_code == other.exit_code == 0
    assert first.stdout == again.stdout != other.stdout
    assert (tmp_path / "a.mid").read_bytes() == (tmp_path / "b.mid").read_bytes()
    unseeded = cli(*args)
    assert "random seed" in unseeded.stderr  # says which seed it drew, to repeat it
    greedy_run = cli("compose", "--model", "m", "--seed", "g8,e8,e4,f8")
    top1 = cli(*args, "--top-k", "1", "--random-seed", "1")
    assert tokens(top1.stdout)[:44] == tokens(greedy_run.stdout)[:44]


def test_choose_with_temperature_top_k_and_top_p():
    p = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    rng = np.random.default_rng(1)

    def drawn(n: int, **options) -> np.ndarray:
        sampling = Sampling(**options)
        return np.bincount([choose(p, sampling, rng) for _ in range(n)], minlength=4) / n

    assert choose(p, Sampling(), None) == 0  # greedy
    assert set(np.flatnonzero(drawn(50, temperature=0.01))) == {0}
    assert set(np.flatnonzero(drawn(300, temperature=5.0, top_k=2))) == {0, 1}
    np.testing.assert_allclose(drawn(4000, temperature=1.0), np.exp(p), atol=0.03)
    assert drawn(4000, temperature=10.0)[3] > 0.15  # flattened towards uniform
    assert set(np.flatnonzero(drawn(300, temperature=1.0, top_p=0.5))) == {0}  # 0.5 suffices
    nucleus = drawn(4000, temperature=1.0, top_p=0.7)  # 0.5 + 0.3 reach 0.7
    np.testing.assert_allclose(nucleus, [0.5 / 0.8, 0.3 / 0.8, 0, 0], atol=0.03)


def choose_one(log_probs, sampling: Sampling, rng) -> int:
    """generation.choose as it was written before tunes were drawn side by side: one row."""
    if not sampling.temperature or rng is None:
        return int(np.argmax(log_probs))
    logits = np.asarray(log_probs, np.float64) / sampling.temperature
    if 0 < sampling.top_k < len(logits):
        logits[np.argsort(logits, kind="stable")[: -sampling.top_k]] = -np.inf
    p = np.exp(logits - logits.max())
    p /= p.sum()
    if sampling.top_p < 1:
        order = np.argsort(-p, kind="stable")
        kept = np.searchsorted(np.cumsum(p[order]), sampling.top_p) + 1
        p[order[kept:]] = 0
        p /= p.sum()
    return int(min(np.searchsorted(np.cumsum(p), rng.random(), side="right"), len(p) - 1))


@pytest.mark.parametrize("size", [1, 2, 7, 33, 921])
def test_choose_rows_draws_each_row_as_choose_did_alone(size):
    rng = np.random.default_rng(size)
    rows = 70
    log_probs = rng.normal(0, 3, (rows, size))
    log_probs[rng.random((rows, size)) < 0.3] = -np.inf
    log_probs[:, 0] = 0.0  # one token each may take
    log_probs[1, : min(size, 4)] = 0.0  # ties
    samplings = [
        Sampling(1.0),
        Sampling(0.7, top_k=5),
        Sampling(1.3, top_p=0.9),
        Sampling(1.0, top_k=3, top_p=0.5),
        Sampling(0.0),
        Sampling(2.0, top_p=0.01),
    ]
    for sampling in samplings:
        streams = [np.random.default_rng([4, r]) for r in range(rows)]
        expected = [choose_one(log_probs[r], sampling, streams[r]) for r in range(rows)]
        streams = [np.random.default_rng([4, r]) for r in range(rows)]
        assert choose_rows(log_probs, sampling, streams).tolist() == expected, sampling
        streams = [np.random.default_rng([4, r]) for r in range(rows)]
        some = [3, 1, 40]  # a row draws the same token among any others
        assert choose_rows(log_probs[some], sampling, [streams[r] for r in some]).tolist() == [
            expected[r] for r in some
        ]
        greedy = choose_rows(log_probs[:2], sampling, [None, None])
        assert greedy.tolist() == np.argmax(log_probs[:2], 1).tolist()


def test_a_rows_product_gives_each_row_the_same_bits_whatever_the_batch():
    """What composing needs of layers.matmul: a row's bits in a batch of any size from 32 on
    are those of a 32-row product holding it with any other rows."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 48)).astype(np.float32)
    w = rng.normal(size=(48, 70)).astype(np.float32)
    others = rng.normal(size=(31, 48)).astype(np.float32)
    alone = np.stack(
        [layers.matmul(np.concatenate([x[r : r + 1], others]), w)[0] for r in range(100)]
    )
    for n in (32, 33, 40, 64, 65, 100):
        assert np.array_equal(layers.matmul(x[:n], w), alone[:n]), n
    assert np.array_equal(layers.matmul(x[:5], w), x[:5] @ w)  # fewer: one product, as before
    assert generation.BLOCK == layers.ROWS  # what composing pads a batch to


def test_tune_k_is_the_same_whatever_the_count_with_max_copy_redrawing(cli, tmp_path):
    """40 song-rnn tunes are two row blocks drawn side by side, ending at different steps, a
    tune over --max-copy drawn again with the others that are; tune k is what -n 1 and -n 3
    draw."""
    common = ("compose", "--model", FIXTURES / "song-rnn", "--random-seed", "5", "--length",
              "12", "--max-copy", "2")  # fmt: skip
    many = cli(*common, "-n", "40", "-o", "many/t.mid")
    few = cli(*common, "-n", "3", "-o", "few/t.mid")
    one = cli(*common, "-o", "one.mid")
    assert many.exit_code == few.exit_code == one.exit_code == 0, many.output
    assert "samplings" in many.stderr  # some tune was drawn again
    assert many.stdout.splitlines()[:3] == few.stdout.splitlines()
    assert few.stdout.splitlines()[0] == one.stdout.strip()
    for k in (1, 2, 3):
        ours = (tmp_path / f"many/t-{k:02d}.mid").read_bytes()
        assert ours == (tmp_path / f"few/t-{k}.mid").read_bytes()
    assert (tmp_path / "many/t-01.mid").read_bytes() == (tmp_path / "one.mid").read_bytes()
    lines = [line.split(": ", 1)[1] for line in many.stderr.splitlines() if ".mid: " in line]
    assert lines[:3] == [line.split(": ", 1)[1] for line in few.stderr.splitlines()
                         if ".mid: " in line]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seed", "g8,e8,e4"], "error: --seed: has 3 notes; this model needs at least 4"),
        (
            ["--seed", "g8,e8,e4,f#8"],
            "--seed: token 'f#8' is not in the model's vocabulary: "
            "the nearest it knows are f8 g8 e8 f4 g4",
        ),
        (["--seed", "g8,e8,e4,h8"], "error: --seed:1:10: bad token 'h8'"),
        (["--seed", "g8,e8,e4,f8", "-o", f"{NABIYA}/out.mid"], "nabiya.txt is not a directory"),
        (["--seed", "g8,e8,e4,f8", "-o", "out.doc"], "out.doc: cannot write .doc"),
        (["--seed", "g8,e8,e4,f8", "--program", "kazoo"], "--program: 'kazoo' is not a General"),
        (["--seed", "g8,e8,e4,f8", "--time", "3/5"], "--time: time must be a time signature"),
        (["--seed", "g8,e8,e4,f8", "--key", "Hm"], "--key: expected a key such as D, Bb, Em"),
        (["--seed", "g8,e8,e4,f8", "-n", "2"], "--count: 2 tunes without sampling would all"),
        (["--seed", "g8,e8,e4,f8", "--top-p", "0"], "--top-p: must be above 0"),
        (["--seed", "g8,e8,e4,f8", "--length", "-1"], "--length"),
        (["--seed", "g8,e8,e4,f8", "--temperature", "-1"], "--temperature"),
        (["--seed", "g8,e8,e4,f8", "--model", "nowhere"], "nowhere: no such model directory"),
    ],
)
def test_compose_errors(cli, tmp_path, args, message):
    numpy_model(tmp_path / "m")
    result = cli("compose", "--model", "m", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_with_no_model_trained_compose_says_it_uses_the_built_in_one(cli):
    result = cli("compose", "--seed", "g8,e8,e4,f8", "--random-seed", "1")
    assert result.exit_code == 0, result.output
    assert "no model trained yet: using the built-in model essen" in result.stderr
    assert tokens(result.stdout)[:4] == ["g8", "e8", "e4", "f8"]
    result = cli("compose", "--model", "missing", "--random-seed", "1")
    assert result.exit_code == 2 and "built-in model: essen" in result.stderr


def test_compose_from_anywhere_uses_the_latest_model_and_never_imports_tensorflow(
    trained, state_dir, tmp_path
):
    """From another directory, as a real process: the latest model is found through the
    per-user state file, named, and used without TensorFlow."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "melodygen", "compose", "--seed", "g8,e8,e4,f8",
         "-o", "p.mid"],
        capture_output=True, text=True, cwd=elsewhere, timeout=60,
        env={**os.environ, "MELODYGEN_STATE": str(state_dir)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert len(tokens(proc.stdout)) == 54 and (elsewhere / "p.mid").is_file()
    assert f"model {trained}" in proc.stderr
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "melodygen.cli" in imported and "numpy" in imported
    assert not {m for m in imported if m.split(".")[0] in ("tensorflow", "keras", "matplotlib")}


# Composing for real use, with an n-gram on a slice of the corpus (no TensorFlow, trained in a
# second): several tunes, copied runs, stopping rules, sound and pictures.


@pytest.fixture(scope="module")
def ngram_model(essen_slice, tmp_path_factory):
    root = tmp_path_factory.mktemp("ngram")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(store.STATE_ENV, str(root / "state"))
        result = invoke("train", essen_slice, "--model", "ngram", "-o", root / "m")
    assert result.exit_code == 0, result.output
    return root / "m"


def test_ngram_counts_what_an_earlier_release_counted(ngram_model):
    """tests/data/models/ngram was counted by `melodygen train` on the same slice."""
    ours, theirs = saved_weights(ngram_model), saved_weights(FIXTURES / "ngram")
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))


def compose_args(model, *args):
    return ("compose", "--model", model, "--temperature", "1", "--random-seed", "7", *args)


def test_count_numbers_the_tunes_and_each_is_the_same_whatever_the_count(cli, ngram_model,
                                                                        tmp_path):  # fmt: skip
    many = cli(*compose_args(ngram_model, "-n", "12", "-o", "many/tune.mid"))
    few = cli(*compose_args(ngram_model, "-n", "3", "-o", "few/tune.mid"))
    assert many.exit_code == few.exit_code == 0, many.output
    assert sorted(p.name for p in (tmp_path / "many").iterdir()) == [
        f"tune-{k:02d}.mid" for k in range(1, 13)
    ]
    assert many.stdout.splitlines()[:3] == few.stdout.splitlines()
    for k in range(1, 4):
        assert (tmp_path / f"many/tune-{k:02d}.mid").read_bytes() == (
            tmp_path / f"few/tune-{k}.mid"
        ).read_bytes()
    assert len(set(many.stdout.splitlines())) == 12  # each from its own random stream
    track = mido.MidiFile(tmp_path / "many/tune-05.mid").tracks[0]
    assert [m.name for m in track if m.type == "track_name"] == ["m 5"]
    assert many.stderr.count("longest copied run") == 12


def test_max_copy_bounds_the_longest_copied_run_as_a_brute_force_scan_finds_it(
    cli, ngram_model, essen_slice
):
    loaded = store.load(ngram_model)
    songs = [s.tokens for s in loaded.meta.songs]

    def longest_copied(tokens: list[str]) -> int:  # quadratic, and obviously right
        best = 0
        for song in songs:
            for i in range(len(tokens)):
                for j in range(len(song)):
                    n = 0
                    while (
                        i + n < len(tokens) and j + n < len(song) and tokens[i + n] == song[j + n]
                    ):
                        n += 1
                    best = max(best, n)
        return best

    free = cli(*compose_args(ngram_model, "-n", "4", "--temperature", "0.3", "--length", "40"))
    assert max(longest_copied(tokens(line)) for line in free.stdout.splitlines()) > 8
    for line, report in zip(free.stdout.splitlines(), free.stderr.splitlines()[-4:], strict=True):
        assert f"longest copied run {longest_copied(tokens(line))} tokens" in report
    bounded = cli(*compose_args(ngram_model, "-n", "4", "--temperature", "0.3", "--length", "40",
                                "--max-copy", "8"))  # fmt: skip
    assert bounded.exit_code == 0, bounded.output
    for line, report in zip(bounded.stdout.splitlines(), bounded.stderr.splitlines()[-4:],
                            strict=True):  # fmt: skip
        if "over --max-copy" not in report:
            assert longest_copied(tokens(line)) <= 8


def test_copy_index_agrees_with_a_brute_force_scan():
    rng = np.random.default_rng(0)
    songs = [rng.integers(0, 4, rng.integers(1, 40)).tolist() for _ in range(50)]
    index = CopyIndex(songs)
    tunes = []
    for _ in range(40):
        tune = rng.integers(0, 4, rng.integers(0, 25)).tolist()
        found = index.longest(tune)
        tunes.append(tune)
        best = max(
            (j - i for i in range(len(tune)) for j in range(i + 1, len(tune) + 1)
             if any(str(tune[i:j])[1:-1] in str(s) for s in songs)),
            default=0,
        )  # fmt: skip
        assert found.length == best
        if best:
            run = tune[found.at : found.at + best]
            song = songs[found.song]
            assert any(song[k : k + best] == run for k in range(len(song)))
    assert index.longest_of(tunes) == [index.longest(t) for t in tunes]  # all at once


def test_bars_stop_at_a_bar_line_of_the_meter_and_no_end_keeps_going(cli, ngram_model, tmp_path):
    result = cli(*compose_args(ngram_model, "-n", "3", "--bars", "4", "--time", "3/4", "--no-end",
                               "--program", "flute", "--tempo", "100", "-o", "b.mid"))  # fmt: skip
    assert result.exit_code == 0, result.output
    for k in (1, 2, 3):
        pm = pretty_midi.PrettyMIDI(str(tmp_path / f"b-{k}.mid"))
        assert (pm.time_signature_changes[0].numerator, pm.instruments[0].program) == (3, 73)
        assert pm.get_end_time() <= 12 * 60 / 100 + 1e-6
    for line in result.stdout.splitlines():
        assert sum(parse_token(t).beats for t in tokens(line)) == 12  # four bars of 3/4
    ended = cli(*compose_args(ngram_model, "-n", "20", "--length", "400"))
    kept = cli(*compose_args(ngram_model, "-n", "3", "--length", "60", "--no-end"))
    assert min(len(tokens(line)) for line in ended.stdout.splitlines()) < 400  # tunes end
    assert [len(tokens(line)) for line in kept.stdout.splitlines()] == [60] * 3


def test_defaults_come_from_the_training_songs_and_the_seed_is_not_counted(cli, ngram_model,
                                                                           tmp_path):  # fmt: skip
    songs = store.load(ngram_model).meta.songs
    meter = collections.Counter(s.time for s in songs if s.time).most_common(1)[0][0]
    (tmp_path / "seed.txt").write_text("time: 6/8\ng8 e8 e4 f8", encoding="utf-8")
    result = cli(*compose_args(ngram_model, "--seed-file", "seed.txt", "--length", "7",
                               "--no-end", "-o", "s.mid"))  # fmt: skip
    assert result.exit_code == 0, result.output
    printed = tokens(result.stdout)
    assert printed[:4] == ["g8", "e8", "e4", "f8"] and len(printed) == 4 + 7
    pm = pretty_midi.PrettyMIDI(str(tmp_path / "s.mid"))
    signature = pm.time_signature_changes[0]
    assert (signature.numerator, signature.denominator) == meter


def test_beam_search_finds_a_continuation_at_least_as_likely_as_greedy(ngram_model):
    model = store.load(ngram_model).model
    seed = [model.vocab.index(t) for t in ["g8", "e8", "e4"]]
    limits = Limits(length=12, stop_at_end=False)

    def log_prob(tokens: list[int]) -> float:
        predictor = model.predictor()
        predictor.reset(1)
        for token in seed[:-1]:
            predictor.feed(np.array([token]))
        total, previous = 0.0, seed[-1]
        for token in tokens:
            total += predictor.feed(np.array([previous]))[0, token]
            previous = token
        return total

    greedy = sample(model, seed, [None], Sampling(), limits)[0]
    beamed = beam_search(model, seed, 8, limits)
    assert len(beamed) == len(greedy) == 12
    assert log_prob(beamed) >= log_prob(greedy) - 1e-9


def test_png_is_a_piano_roll_of_each_tune(cli, ngram_model, tmp_path):
    result = cli(*compose_args(ngram_model, "-n", "2", "--png", "-o", "t.mid"))
    assert result.exit_code == 0, result.output
    image = matplotlib.image.imread(tmp_path / "t-2.png")
    assert image.shape[0] > 200 and image.shape[1] >= 800


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="FluidSynth is not installed")
def test_wav_plays_as_long_as_the_midi_plus_the_release(cli, ngram_model, tmp_path):
    result = cli(*compose_args(ngram_model, "-n", "2", "--length", "30", "-o", "t.wav"))
    assert result.exit_code == 0, result.output
    for k in (1, 2):
        seconds = pretty_midi.PrettyMIDI(str(tmp_path / f"t-{k}.mid")).get_end_time()
        with wave.open(str(tmp_path / f"t-{k}.wav")) as audio:
            assert audio.getnchannels() == 2 and audio.getframerate() == 44100
            assert seconds <= audio.getnframes() / 44100 <= seconds + 5
    rendered = cli("render", NABIYA, "-o", "n.mid", "--wav", "--program", "violin")
    assert rendered.exit_code == 0, rendered.output
    with wave.open(str(tmp_path / "n.wav")) as audio:
        assert audio.getnframes() / 44100 >= 16  # 32 beats at 120


def test_without_fluidsynth_the_midi_is_written_and_one_line_says_how_to_install_it(
    cli, ngram_model, tmp_path, monkeypatch
):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = cli(*compose_args(ngram_model, "-o", "t.wav"))
    assert result.exit_code == 1
    assert (tmp_path / "t.mid").is_file() and not (tmp_path / "t.wav").exists()
    assert result.stderr.strip().splitlines()[-1].startswith("error: FluidSynth is not installed")
    assert "apt-get install fluidsynth" in result.stderr


@pytest.mark.parametrize("kind", ["mlp", "lstm", "stateful", "stateful-features"])
def test_every_kind_composes_with_beam_search_top_p_and_bars(cli, tmp_path, kind):
    numpy_model(tmp_path / "m", kind=kind, units=8, seed=2)
    seed = "g8,e8,e4,f8"
    beamed = cli("compose", "--model", "m", "--seed", seed, "--beam", "3", "--length", "6")
    nucleus = cli("compose", "--model", "m", "--seed", seed, "--temperature", "1", "--top-p",
                  "0.9", "-n", "2", "--bars", "2", "--random-seed", "1")  # fmt: skip
    assert beamed.exit_code == nucleus.exit_code == 0, beamed.output + nucleus.output
    assert tokens(beamed.stdout)[:4] == seed.split(",") and len(tokens(beamed.stdout)) == 10
    for line in nucleus.stdout.splitlines():  # 2/4: the seed fills a bar, then two more
        assert sum(parse_token(t).beats for t in tokens(line)) == 6


def test_a_tune_is_spelled_in_its_key_and_says_which(cli, tmp_path):
    """A model that learned both c#4 and d-4 (from songs in F# and G-flat) still writes each
    pitch of a tune one way, for the key estimated from the tune, and a key signature."""
    (tmp_path / "songs").mkdir()
    for name, text in (
        ("sharp.txt", "f#4 g#4 a#4 b4 c'#4 d'#4 e'#4 f'#2 e'#4 d'#4 c'#4 b4 a#4 g#4 f#2"),
        ("flat.txt", "g-4 a-4 b-4 c'-4 d'-4 e'-4 f'4 g'-2 f'4 e'-4 d'-4 c'-4 b-4 a-4 g-2"),
    ):
        (tmp_path / "songs" / name).write_text(text + "\n")
    trained = cli("train", tmp_path / "songs", "--model", "ngram", "-o", "m")
    assert trained.exit_code == 0, trained.output
    result = cli("compose", "--model", "m", "-n", "6", "--random-seed", "3", "--length", "40",
                 "-o", "k/t.mid")  # fmt: skip
    assert result.exit_code == 0, result.output
    mixed = 0
    for k, line in enumerate(result.stdout.splitlines(), start=1):
        notes = [parse_token(t) for t in tokens(line)]
        spellings = collections.defaultdict(set)
        for note in notes:
            spellings[note.midi_pitch % 12].add((note.letter, note.alter))
        assert all(len(s) == 1 for s in spellings.values()), line
        mixed += len({n.alter for n in notes} - {0}) > 1  # sharps and flats in one tune
        keys = [m.key for m in mido.MidiFile(tmp_path / f"k/t-{k}.mid").tracks[0]
                if m.type == "key_signature"]  # fmt: skip
        assert len(keys) == 1
    assert mixed == 0


def test_key_moves_a_tune_of_a_model_not_told_the_key_into_it(cli, ngram_model, tmp_path):
    """The same tunes, moved: the same rhythm and intervals, spelled for the key, its key
    signature in the MIDI file."""
    plain = cli(*compose_args(ngram_model, "-n", "4", "--length", "30"))
    asked = cli(*compose_args(ngram_model, "-n", "4", "--length", "30", "--key", "Bb", "-o",
                              "k/t.mid"))  # fmt: skip
    assert plain.exit_code == asked.exit_code == 0, asked.output
    for k, (a, b) in enumerate(zip(plain.stdout.splitlines(), asked.stdout.splitlines(),
                                   strict=True), start=1):  # fmt: skip
        before, after = (tuple(parse_token(t) for t in tokens(line)) for line in (a, b))
        assert [n.length for n in before] == [n.length for n in after]
        shifts = {m.midi_pitch - n.midi_pitch for n, m in zip(before, after, strict=True)
                  if not n.is_rest}  # fmt: skip
        assert len(shifts) == 1 and -6 <= shifts.pop() <= 6
        assert not {n.alter for n in after if n.letter} & {1, 2}  # Bb major: flats
        keys = [m.key for m in mido.MidiFile(tmp_path / f"k/t-{k}.mid").tracks[0]
                if m.type == "key_signature"]  # fmt: skip
        assert keys == ["Bb"]
    assert asked.stderr.count("in Bb major") == 4


@pytest.mark.parametrize(
    ("tune", "key", "moved"),
    [
        ("c4 d4 e4 f4 g2 e4 c4", "G", "G4 A4 B4 c4 d2 B4 G4"),  # down a fourth, not up a fifth
        ("a4 c'4 e'4 d'4 c'4 b4 a2", "e", "e4 g4 b4 a4 g4 f#4 e2"),  # A minor to E minor
        ("c4 d4 e4 f4 g2 e4 c4", "e", "G4 A4 B4 c4 d2 B4 G4"),  # C major to E minor's relative
    ],
)
def test_a_tune_moves_into_a_key_by_the_fewest_semitones(tune, key, moved):
    notes = generation.to_key(parse_song(tune).notes, key)
    assert " ".join(n.token for n in notes) == moved


def test_in_bars_keeps_every_note_inside_its_bar_and_ends_on_a_bar_line(cli, ngram_model):
    result = cli(*compose_args(ngram_model, "-n", "10", "--in-bars", "--time", "3/4"))
    assert result.exit_code == 0, result.output
    for line in result.stdout.splitlines():
        song = parse_song("time: 3/4\n" + line)
        r = song_rhythm(song)
        assert r.crossing == 0 and r.whole == 1, line
        bars = [b for b in line.split("|")]
        assert all(sum(parse_token(t).length for t in b.split()) == 3 for b in bars), line
    free = cli(*compose_args(ngram_model, "-n", "10", "--time", "3/4"))
    assert sum(song_rhythm(parse_song("time: 3/4\n" + line)).crossing
               for line in free.stdout.splitlines()) > 0  # without it, some notes do  # fmt: skip
