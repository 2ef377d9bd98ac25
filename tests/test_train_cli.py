"""train, evaluate and compare through the CLI runner, with tiny real models."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pretty_midi
import pytest

from conftest import CHAPTER_SEQ, NABIYA, SONGS, TINY, write
from melodygen import store
from melodygen.midi import PPQ
from melodygen.notation import read_song
from melodygen.training import setup_tensorflow

FILES = {"model.keras", "weights.npz", "melodygen.json", "report.json", "loss.png",
         "one_step.mid", "one_step.txt", "full_song.mid", "full_song.txt"}  # fmt: skip


def midi_notes(path):
    pm = pretty_midi.PrettyMIDI(str(path))
    return [
        (pm.time_to_tick(n.start), pm.time_to_tick(n.end), n.pitch) for n in pm.instruments[0].notes
    ]


@pytest.mark.parametrize("kind", ["mlp", "lstm", "stateful", "stateful-features"])
def test_train_writes_the_model_directory(trained_models, kind):
    out = trained_models[kind]
    assert {p.name for p in out.iterdir()} == FILES
    report = json.loads((out / "report.json").read_text())
    assert report["model"] == kind and report["songs"] == ["nabiya"]
    assert report["epochs_run"] == 3 and len(report["history"]["loss"]) == 3
    assert report["predictions"] == 50
    assert report["accuracy"] == report["one_step_correct"] / 50
    assert 0 <= report["full_song_correct"] <= 50
    assert report["final_loss"] == report["history"]["loss"][-1] > 0
    training = report["measures"]["training"]
    assert training["tokens"] == training["notes"] == 54 and training["songs"] == 1
    assert 0 < training["bits_per_token"] < 20 and training["accuracy"] == report["accuracy"]
    # the comparison table printed the same figures
    stdout = (out.parent.parent / "compare.stdout").read_text()
    row = next(line for line in stdout.splitlines() if f" {kind} " in line)
    assert f"{report['one_step_correct']} of 50" in row
    assert f"{training['bits_per_token']:.3f}" in row

    meta = json.loads((out / "melodygen.json").read_text())
    assert meta["vocabulary"][:14] == ["c4", "d4", "e4", "f4", "g4", "a4", "b4",
                                       "c8", "d8", "e8", "f8", "g8", "a8", "b8"]  # fmt: skip
    assert meta["model"] == kind and meta["spec"]["window"] == 4 and meta["seed"] == 5
    assert meta["songs"][0]["tokens"] == " ".join(CHAPTER_SEQ)

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
    _, keras = setup_tensorflow()
    model = keras.models.load_model(out / "model.keras", safe_mode=True)
    with np.load(out / "weights.npz", allow_pickle=False) as npz:
        saved = [npz[f"arr_{i}"] for i in range(len(npz.files))]
    for a, b in zip(model.get_weights(), saved, strict=True):
        np.testing.assert_array_equal(a, b)


def test_same_seed_gives_byte_identical_files(cli, trained_models, tmp_path, state_dir):
    """train writes, byte for byte, what compare wrote for the same options; another seed gives
    other weights."""
    first = trained_models["mlp"]  # seed 5, the default
    result = cli("train", NABIYA, "--model", "mlp", *TINY, "-o", "again")
    assert result.exit_code == 0, result.output
    assert "saved again/ (now the latest model)" in result.stdout
    # a tiny model's epoch on nabiya takes milliseconds: not "0.00 s"
    assert re.search(r"per second \((\d+\.\d ms|\d+\.\d\d s) per epoch", result.stdout)
    assert "(0.00 s per epoch" not in result.stdout
    assert (state_dir / store.LATEST_FILE).read_text().strip() == str(tmp_path / "again")
    report = json.loads((first / "report.json").read_text())
    row = next(line for line in result.stdout.splitlines() if " mlp " in line)
    assert f"{report['one_step_correct']} of 50" in row
    for name in FILES - {"report.json"}:
        assert (first / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name
    a, b = (json.loads((d / "report.json").read_text()) for d in (first, tmp_path / "again"))
    for timing in ("train_seconds", "tokens_per_second", "seconds_per_epoch", "peak_memory_mb"):
        a.pop(timing), b.pop(timing)
    assert len(a["history"].pop("epoch_seconds")) == len(b["history"].pop("epoch_seconds")) > 0
    assert a == b
    result = cli("train", NABIYA, "--model", "mlp", *TINY, "--random-seed", "4", "-o", "other")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "other" / "melodygen.json").read_text())["seed"] == 4
    assert (tmp_path / "other" / "weights.npz").read_bytes() != (first / "weights.npz").read_bytes()


def test_train_on_a_directory_names_the_model_after_it(cli, tmp_path, state_dir):
    songs = tmp_path / "tunes"
    songs.mkdir()
    for name in ("twinkle", "frere_jacques"):
        shutil.copy(SONGS / f"{name}.txt", songs)
    result = cli("train", songs, "--epochs", "1", "--units", "4")
    assert result.exit_code == 0, result.output
    out = tmp_path / "outputs" / "tunes-stateful"
    assert (state_dir / store.LATEST_FILE).read_text().strip() == str(out)
    report = json.loads((out / "report.json").read_text())
    assert report["songs"] == ["frere_jacques", "twinkle"]
    assert report["predictions"] == (32 - 4) + (42 - 4)
    assert report["measures"]["training"]["tokens"] == 32 + 42
    one_step = read_song(out / "one_step.txt")
    assert len(one_step.notes) == 32 + 1 + 42  # a whole rest between the songs
    meta = json.loads((out / "melodygen.json").read_text())
    assert {"b-4", "c'2", "g2"} <= set(meta["vocabulary"])


def test_evaluate_marks_wrong_notes_and_writes_midi(cli, model_copy, tmp_path):
    model = model_copy("lstm")
    result = cli("evaluate", "--png")
    assert result.exit_code == 0, result.output
    assert f"model {model}" in result.stderr
    report = json.loads((model / "report.json").read_text())
    assert f"one-step {report['one_step_correct']} of 50" in result.stdout
    wrong = 50 - report["one_step_correct"] + 50 - report["full_song_correct"]
    assert result.stdout.count("*") - result.stdout.splitlines()[0].count("*") == wrong
    evaluated = model / "evaluate"
    assert {p.name for p in evaluated.iterdir()} == {
        "one_step.mid", "one_step.txt", "full_song.mid", "full_song.txt", "nabiya.png",
    }  # fmt: skip
    assert len(midi_notes(evaluated / "full_song.mid")) == 54
    # another song the model can read, and one with notes it never saw
    write(tmp_path / "other.txt", "g8 e8 e4 f8 d8 d4 c8 d8 e8 f8 g8")
    result = cli("evaluate", "other.txt", "--out", "other")
    assert result.exit_code == 0, result.output
    assert read_song(tmp_path / "other" / "one_step.txt").tokens[:4] == ["g8", "e8", "e4", "f8"]
    write(tmp_path / "sharp.txt", "g8 e8 e4 f#8 d8 d4")  # f#8: a token it never saw
    result = cli("evaluate", "sharp.txt", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["measures"]["unseen_tokens"] == 1


def test_compare_trains_the_four_models(trained_models):
    out = trained_models["mlp"].parent
    stdout = (out.parent / "compare.stdout").read_text()
    assert "the chapter's comparison" in stdout
    summary = json.loads((out / "compare.json").read_text())
    assert [r["model"] for r in summary] == ["mlp", "lstm", "stateful", "stateful-features"]
    for r in summary:
        assert r["epochs_run"] == 3 and r["predictions"] == 50 and "history" not in r
        assert r == {
            k: v
            for k, v in json.loads((out / r["model"] / "report.json").read_text()).items()
            if k != "history"
        }
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"


def test_train_usage_errors(cli):
    for args in (["--model", "gru"], ["--epochs", "0"], ["--units", "0"], ["--window", "0"]):
        result = cli("train", NABIYA, *args)
        assert result.exit_code == 2, args
        assert result.stderr.strip().count("\n") == 0
