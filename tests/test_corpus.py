"""Corpora: reading directories, the held-out split, and training and evaluating on them."""

from __future__ import annotations

import json
import re
import shutil
import time
import zlib
from fractions import Fraction

import music21
import numpy as np
import pytest

from conftest import SONGS, write
from melodygen import corpus
from melodygen.notation import read_song


@pytest.fixture(scope="module")
def essen_read(essen):
    start = time.perf_counter()
    read = corpus.read([essen], strict=True)
    return read, time.perf_counter() - start


def test_every_tune_of_the_corpus_sample_reads(essen_read, essen):
    read, seconds = essen_read
    files = sorted(essen.glob("*.txt"))
    assert len(read.songs) == len(files) == 383 and not read.skipped
    # as many notes and rests as the files' bodies have tokens (the sample has no ties)
    tokens = sum(
        len(line.split())
        for path in files
        for line in path.read_text(encoding="utf-8").splitlines()
        if ":" not in line
    )
    assert sum(len(s.notes) for s in read.songs) == tokens > 15_000
    meters = {s.time for s in read.songs}
    assert (116, 4) in meters and (97, 32) in meters  # real Essen meters
    assert seconds < 5  # a benchmark measures the whole corpus: benchmarks/corpus.py


def test_the_split_is_by_file_name_and_stable(essen_read):
    songs = essen_read[0].songs
    train, held = corpus.split(songs, 0.1)
    # the rule, restated: CRC-32 of the file name (UTF-8) is 0 modulo round(1 / fraction)
    names = [corpus.file_name(s) for s in held]
    assert names == [
        corpus.file_name(s) for s in songs if zlib.crc32(corpus.file_name(s).encode()) % 10 == 0
    ]
    assert 20 < len(held) < 60 and len(train) == len(songs) - len(held)
    # adding songs never moves the others
    more, _ = corpus.split(songs[:100], 0.1)
    assert {corpus.file_name(s) for s in more} <= {corpus.file_name(s) for s in train}
    assert corpus.split(songs, 0.2)[1] != held and len(corpus.split(songs, 0.2)[1]) < 150
    assert corpus.default_valid(songs[:19]) == 0 and corpus.default_valid(songs[:20]) == 0.1


def test_directories_are_read_recursively_with_midi_files(cli, tmp_path):
    (tmp_path / "tunes" / "deeper").mkdir(parents=True)
    shutil.copy(SONGS / "twinkle.txt", tmp_path / "tunes")
    assert cli("render", SONGS / "ode_to_joy.txt", "-o", "tunes/deeper/ode.mid").exit_code == 0
    read = corpus.read([tmp_path / "tunes"], strict=True)
    assert [s.name for s in read.songs] == ["ode", "twinkle"]
    assert read.songs[0].tokens == read_song(SONGS / "ode_to_joy.txt").tokens


def test_ngram_trains_on_a_corpus_and_evaluate_reports_the_held_out_measures(
    cli, essen_slice, tmp_path
):
    result = cli("train", essen_slice, "--model", "ngram", "--order", "4", "-o", "ng")
    assert result.exit_code == 0, result.output
    assert "compiling" not in result.stderr  # counted, not trained: no TensorFlow
    model = tmp_path / "ng"
    assert {p.name for p in model.iterdir()} == {
        "weights.npz", "melodygen.json", "report.json", "loss.png", "one_step.mid",
        "one_step.txt", "full_song.mid", "full_song.txt",
    }  # fmt: skip
    meta = json.loads((model / "melodygen.json").read_text())
    report = json.loads((model / "report.json").read_text())
    assert meta["valid"] == 0.1 and len(meta["held_out"]) == 7 == len(report["held_out"])
    assert meta["vocabulary"][-2:] == ["<end>", "<unk>"] and meta["spec"] == {"order": 4}
    valid = report["measures"]["validation"]
    assert valid["songs"] == 7 and valid["unseen_tokens"] >= 0
    assert 0 < valid["pitch_bits_per_note"] < valid["bits_per_token"] < 12
    assert report["measures"]["training"]["songs"] == 53

    # train measures the model alone; evaluate learns within each tune unless told not to
    result = cli("evaluate", "--held-out", essen_slice, "--json", "--within-tune", "none")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["measures"] == valid
    result = cli("evaluate", "--held-out", essen_slice, "--json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["measures"]["tokens"] == valid["tokens"]
    assert printed["measures"]["bits_per_token"] < valid["bits_per_token"]  # the tunes repeat
    assert [s["name"] for s in printed["songs"]] == [
        n.removesuffix(".txt") for n in meta["held_out"]
    ]
    table = cli("evaluate", essen_slice)  # a directory: one summary table, no alignments
    assert table.exit_code == 0 and "one-step" not in table.stdout
    assert re.search(r"\n songs +│ *60 │", table.stdout), table.stdout  # all 60 in one row
    assert not list((model / "evaluate").glob("*.png"))  # pictures only when asked


def test_unseen_tokens_are_scored_not_skipped(cli, essen_slice, tmp_path):
    assert cli("train", essen_slice, "--model", "ngram", "--order", "3", "-o", "ng").exit_code == 0
    write(tmp_path / "odd.txt", "c4 d4 e4 c''#32.. d4 e4 r1.. c4")  # two tokens never seen
    result = cli("evaluate", "odd.txt", "--json")
    assert result.exit_code == 0, result.output
    measures = json.loads(result.stdout)["measures"]
    assert measures["unseen_tokens"] == 2 and measures["unseen_pitches"] == 1
    assert measures["tokens"] == 8 and measures["notes"] == 7
    assert np.isfinite(measures["bits_per_token"]) and measures["bits_per_token"] > 5


def test_training_measures_held_out_songs_each_epoch_and_keeps_the_best(cli, essen_slice, tmp_path):
    """A chapter model on a corpus: the held-out songs measured after each epoch, early
    stopping on their loss, and the kept weights are those of the best epoch."""
    result = cli("train", essen_slice, "--model", "mlp", "--units", "8", "--epochs", "12",
                 "--patience", "2", "--random-seed", "3", "-o", "m")  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "m" / "report.json").read_text())
    history = report["history"]
    epochs = report["epochs_run"]
    assert (
        len(history["loss"]) == len(history["valid_loss"]) == len(history["valid_bits"]) == epochs
    )
    best = report["best_epoch"]
    assert history["valid_loss"][best - 1] == min(history["valid_loss"])
    assert epochs == 12 or epochs == best + 2  # stopped by patience, or ran out of epochs
    assert f"kept the weights of epoch {best}" in result.stdout
    # the saved model is the best epoch's: its held-out loss is the one recorded then
    evaluated = cli("evaluate", "--held-out", essen_slice, "--json")
    assert evaluated.exit_code == 0, evaluated.output
    again = json.loads(evaluated.stdout)["measures"]
    assert again["loss"] == pytest.approx(history["valid_loss"][best - 1], rel=1e-6)
    assert report["measures"]["validation"]["loss"] == pytest.approx(again["loss"], rel=1e-12)
    assert "held-out: loss" in result.stderr  # the progress lines show the held-out measures


def test_min_delta_counts_only_clear_improvements_as_keras_early_stopping_does(
    cli, essen_slice, tmp_path
):
    result = cli("train", essen_slice, "--model", "mlp", "--units", "8", "--epochs", "12",
                 "--patience", "2", "--min-delta", "0.05", "--random-seed", "3",
                 "-o", "m")  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "m" / "report.json").read_text())
    best_loss, expected = float("inf"), None
    for epoch, loss in enumerate(report["history"]["valid_loss"], 1):
        if loss < best_loss - 0.05:
            best_loss, expected = loss, epoch
    assert report["best_epoch"] == expected
    assert report["epochs_run"] in (12, expected + 2)
    assert report["measures"]["validation"]["loss"] == pytest.approx(best_loss, rel=1e-9)


def test_stateful_models_train_on_songs_side_by_side(cli, essen_slice, tmp_path):
    result = cli("train", essen_slice, "--model", "stateful-features", "--units", "8",
                 "--epochs", "2", "--batch", "16", "--valid", "0", "-o", "m")  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "m" / "report.json").read_text())
    assert report["measures"]["validation"] is None and report["held_out"] == []
    assert report["measures"]["training"]["songs"] == 60 and report["epochs_run"] == 2
    assert report["tokens_per_second"] > 0


TUNE = "X:{x}\nT: t{x}\nM:2/4\nL:1/8\nK:C\n{body}\n\n"
TWELVE = "cdef | gabc' | c'bag | fedc |"  # 16 eighth notes


def test_essen_export_merges_ties_and_counts_what_it_cannot_spell(tmp_path):
    bodies = {
        1: TWELVE + " C4- | C2 z2 |]",  # a tie across the bar line: one dotted half
        2: TWELVE + " (3cde c2 |]",  # triplet
        3: TWELVE + " {g}c4 |]",  # grace note
        4: TWELVE + " [ceg]4 |]",  # chord
        5: "cdef | gabc' |]",  # 8 notes: a fragment
        6: TWELVE + " C4- | C |]",  # tied into 5/8 of a whole: no token is that long
        7: TWELVE + " (5cdefg c |]",  # a quintuplet: no tokens add up to a fifth of a beat
    }
    abc = tmp_path / "mini.abc"
    abc.write_text("".join(TUNE.format(x=x, body=b) for x, b in bodies.items()), encoding="utf-8")
    (tmp_path / "out").mkdir()
    export = corpus.write_essen(tmp_path / "out", files=[abc])
    assert export.written == 3 and not export.failed
    assert export.skipped == {
        "grace notes": 1, "chords": 1, "fewer than 12 notes and rests": 1,
        "a length no tokens add up to": 1,
    }  # fmt: skip
    song = read_song(tmp_path / "out" / "mini-0001.txt")
    assert (song.title, song.time) == ("mini-1", (2, 4))
    assert song.tokens[-3:] == ["c'8", "c2.", "r4"]
    assert read_song(tmp_path / "out" / "mini-0002.txt").tokens[-4:] == [
        "trip{c'8}", "trip{d'8}", "trip{e'8}", "c'4"
    ]  # fmt: skip
    assert read_song(tmp_path / "out" / "mini-0006.txt").tokens[-2:] == ["c2~", "c8"]
    for x in (2, 6):  # the lengths music21 reads from the ABC, tied notes as they are tied
        theirs = music21.converter.parse(TUNE.format(x=x, body=bodies[x]), format="abc")
        lengths = [Fraction(n.quarterLength) for n in theirs.flatten().notesAndRests]
        song = read_song(tmp_path / "out" / f"mini-{x:04d}.txt")
        assert [n.length for n in song.notes] == lengths, x


def test_essen_export_matches_the_corpus(cli, essen, tmp_path):
    """One file of music21's collection (erk5.abc), through the command: the same tunes and
    tokens as the corpus (the tests' sample holds all of erk5's), which was exported from
    music21 the same way before ties could be written, and the one tune it left out for a
    length no single token has."""
    erk5 = music21.common.getCorpusFilePath() / "essenFolksong" / "erk5.abc"
    (tmp_path / "out").mkdir()
    export = corpus.write_essen(tmp_path / "out", files=[erk5])
    assert export.written == 27 and not export.skipped
    written = {p.name for p in (tmp_path / "out").iterdir()}
    shared = {p.name for p in essen.glob("erk5-*.txt")}
    assert len(shared) == 26 and shared < written
    for name in shared:
        mine, theirs = read_song(tmp_path / "out" / name), read_song(essen / name)
        assert (mine.title, mine.tokens) == (theirs.title, theirs.tokens)
    (extra,) = written - shared
    assert any(n.tie for n in read_song(tmp_path / "out" / extra).notes)
    assert "already exists" in cli("corpus", "essen", tmp_path / "out").stderr
