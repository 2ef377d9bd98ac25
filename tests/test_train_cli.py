"""train, evaluate and compare through the CLI runner, with tiny real models."""

from __future__ import annotations

import json

import keras
import numpy as np
import pretty_midi
import pytest

from conftest import CHAPTER_SEQ, NABIYA, SONGS, write
from melodygen.midi import PPQ
from melodygen.notation import read_song

TINY = ("--epochs", "3", "--units", "8")
FILES = {"model.keras", "weights.npz", "melodygen.json", "report.json", "loss.png",
         "one_step.mid", "one_step.txt", "full_song.mid", "full_song.txt"}  # fmt: skip


def midi_notes(path):
    pm = pretty_midi.PrettyMIDI(str(path))
    return [
        (pm.time_to_tick(n.start), pm.time_to_tick(n.end), n.pitch) for n in pm.instruments[0].notes
    ]


@pytest.mark.parametrize("kind", ["mlp", "lstm", "stateful", "stateful-features"])
def test_train_writes_the_model_directory(cli, tmp_path, kind):
    result = cli("train", NABIYA, "--model", kind, *TINY)
    assert result.exit_code == 0, result.output
    out = tmp_path / "outputs" / f"nabiya-{kind}"
    assert {p.name for p in out.iterdir()} == FILES
    assert (tmp_path / "outputs" / "latest").read_text().strip() == str(out)
    assert "50" in result.stdout and kind in result.stdout  # the summary table

    report = json.loads((out / "report.json").read_text())
    assert report["model"] == kind and report["songs"] == ["nabiya"]
    assert report["epochs_run"] == 3 and len(report["loss_history"]) == 3
    assert report["predictions"] == 50
    assert report["accuracy"] == report["one_step_correct"] / 50
    assert 0 <= report["full_song_correct"] <= 50
    assert report["final_loss"] == report["loss_history"][-1] > 0

    meta = json.loads((out / "melodygen.json").read_text())
    assert meta["vocabulary"][:14] == ["c4", "d4", "e4", "f4", "g4", "a4", "b4",
                                       "c8", "d8", "e8", "f8", "g8", "a8", "b8"]  # fmt: skip
    assert meta["model"] == kind and meta["window"] == 4 and meta["seed"] == 5
    assert meta["songs"][0]["tokens"] == CHAPTER_SEQ

    for mode in ("one_step", "full_song"):
        tokens = read_song(out / f"{mode}.txt").tokens
        assert len(tokens) == 54 and tokens[:4] == CHAPTER_SEQ[:4]
        notes = midi_notes(out / f"{mode}.mid")
        assert [p for _, _, p in notes] == [
            read_song(out / f"{mode}.txt").notes[i].midi_pitch for i in range(54)
        ]
        lengths = [end - start for start, end, _ in notes]
        assert lengths == [PPQ if t.endswith("4") else PPQ // 2 for t in tokens]

    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model = keras.models.load_model(out / "model.keras", safe_mode=True)
    with np.load(out / "weights.npz", allow_pickle=False) as npz:
        saved = [npz[f"arr_{i}"] for i in range(len(npz.files))]
    for a, b in zip(model.get_weights(), saved, strict=True):
        np.testing.assert_array_equal(a, b)


def test_same_seed_gives_byte_identical_files(cli, tmp_path):
    for out in ("a", "b"):
        assert (
            cli("train", NABIYA, "--model", "mlp", *TINY, "--seed", "3", "--out", out).exit_code
            == 0
        )
    for name in FILES - {"report.json"}:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    a, b = (json.loads((tmp_path / d / "report.json").read_text()) for d in "ab")
    a.pop("train_seconds"), b.pop("train_seconds")
    assert a == b
    assert cli("train", NABIYA, "--model", "mlp", *TINY, "--seed", "4", "--out", "c").exit_code == 0
    assert (tmp_path / "c" / "weights.npz").read_bytes() != (
        tmp_path / "a" / "weights.npz"
    ).read_bytes()


def test_train_on_a_directory_of_songs(cli, tmp_path):
    songs = tmp_path / "songs"
    songs.mkdir()
    for name in ("twinkle", "frere_jacques"):
        (songs / f"{name}.txt").write_text((SONGS / f"{name}.txt").read_text())
    result = cli("train", songs, *TINY, "--out", "both")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "both" / "report.json").read_text())
    assert report["songs"] == ["frere_jacques", "twinkle"]
    assert report["predictions"] == (32 - 4) + (42 - 4)
    one_step = read_song(tmp_path / "both" / "one_step.txt")
    assert len(one_step.notes) == 32 + 1 + 42  # a whole rest between the songs
    meta = json.loads((tmp_path / "both" / "melodygen.json").read_text())
    assert {"b-4", "c'2", "g2"} <= set(meta["vocabulary"])


def test_evaluate_marks_wrong_notes_and_writes_midi(cli, tmp_path):
    assert cli("train", NABIYA, "--model", "lstm", *TINY).exit_code == 0
    result = cli("evaluate")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "outputs" / "nabiya-lstm" / "report.json").read_text())
    assert f"one-step {report['one_step_correct']} of 50" in result.stdout
    evaluated = tmp_path / "outputs" / "nabiya-lstm" / "evaluate"
    assert {p.name for p in evaluated.iterdir()} == {
        "one_step.mid",
        "one_step.txt",
        "full_song.mid",
        "full_song.txt",
        "nabiya.png",
    }
    assert len(midi_notes(evaluated / "full_song.mid")) == 54
    # another song the model can read, and one with notes it never saw
    write(tmp_path / "other.txt", "g8 e8 e4 f8 d8 d4 c8 d8 e8 f8 g8")
    result = cli("evaluate", "other.txt", "--out", "other")
    assert result.exit_code == 0, result.output
    assert read_song(tmp_path / "other" / "one_step.txt").tokens[:4] == ["g8", "e8", "e4", "f8"]
    write(tmp_path / "sharp.txt", "g8 e8 e4 f#8 d8 d4")
    result = cli("evaluate", "sharp.txt")
    assert result.exit_code == 2 and "'f#8' is not in the model's vocabulary" in result.stderr


def test_compare_trains_the_four_models(cli, tmp_path):
    result = cli("compare", NABIYA, "--epochs", "2", "--units", "8")
    assert result.exit_code == 0, result.output
    out = tmp_path / "outputs" / "compare-nabiya"
    summary = json.loads((out / "compare.json").read_text())
    assert [r["model"] for r in summary] == ["mlp", "lstm", "stateful", "stateful-features"]
    for kind in ("mlp", "lstm", "stateful", "stateful-features"):
        assert kind in result.stdout
        assert {p.name for p in (out / kind).iterdir()} == FILES
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"


def test_train_usage_errors(cli):
    for args in (["--model", "gru"], ["--epochs", "0"], ["--units", "0"], ["--window", "0"]):
        result = cli("train", NABIYA, *args)
        assert result.exit_code == 2, args
        assert result.stderr.strip().count("\n") == 0
