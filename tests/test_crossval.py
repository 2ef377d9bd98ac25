"""`melodygen crossval` and `--per-note`: the folds against the definition computed here, and
each note's figures against the measures they sum to."""

from __future__ import annotations

import csv
import json
import math
import shutil

import numpy as np
import pytest

from conftest import FIXTURES


def folds_by_hand(names: list[str], folds: int, seed: int) -> dict[str, int]:
    """docs/cli.md's definition: the sorted names in numpy's fixed shuffle, i-th in fold i mod k."""
    ordered = sorted(names)
    shuffled = [ordered[j] for j in np.random.default_rng(seed).permutation(len(ordered))]
    return {name: i % folds for i, name in enumerate(shuffled)}


def rows_of(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_crossval_trains_a_model_per_fold_and_measures_each_on_its_fold(cli, essen_slice, tmp_path):
    result = cli("crossval", essen_slice, "--model", "ngram", "--order", "4", "--folds", "3",
                 "--random-seed", "7", "-o", "cv", "--per-note", "notes.csv", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    names = sorted(p.stem for p in essen_slice.glob("*.txt"))
    expected = folds_by_hand(names, 3, 7)
    assert {s["name"]: s["fold"] for s in printed["songs"]} == expected
    for k in range(3):
        report = json.loads((tmp_path / "cv" / f"fold-{k}" / "report.json").read_text())
        learned = set(report["songs"]) | {n.removesuffix(".txt") for n in report["held_out"]}
        assert learned == {n for n in names if expected[n] != k}  # trained on the other folds
        fold = printed["folds"][k]
        assert fold["songs"] == sum(f == k for f in expected.values())
    pooled = printed["measures"]
    folds = printed["folds"]
    assert pooled["tokens"] == sum(f["tokens"] for f in folds)
    assert pooled["bits_per_token"] == pytest.approx(
        sum(f["bits_per_token"] * f["tokens"] for f in folds) / pooled["tokens"]
    )
    evaluated = cli("evaluate", "--model", tmp_path / "cv" / "fold-0", essen_slice, "--json")
    assert set(json.loads(evaluated.stdout)["measures"]) == set(pooled)  # shaped as evaluate's
    assert json.loads((tmp_path / "cv" / "crossval.json").read_text()) == printed

    rows = rows_of(tmp_path / "notes.csv")
    assert len(rows) == pooled["tokens"]
    for song in printed["songs"]:
        mine = [r for r in rows if r["song"] == song["name"]]
        assert {r["fold"] for r in mine} == {str(song["fold"])}
        assert len(mine) == song["tokens"]
        bits = sum(float(r["information_content"]) for r in mine)
        assert bits == pytest.approx(song["bits_per_token"] * song["tokens"], rel=1e-5)
        notes = [r for r in mine if r["pitch"]]
        assert len(notes) == song["notes"]
        pitch_bits = sum(float(r["pitch_information_content"]) for r in notes)
        assert pitch_bits == pytest.approx(song["pitch_bits_per_note"] * song["notes"], rel=1e-5)
        assert all(0 <= float(r["pitch_entropy"]) <= math.log2(128) for r in notes)
        assert all(float(r["entropy"]) >= 0 for r in mine)


def test_evaluate_per_note_matches_its_measures_with_and_without_within_tune_learning(
    cli, essen_slice, tmp_path
):
    trained = cli("train", essen_slice, "--model", "ngram", "--order", "3", "-o", "m")
    assert trained.exit_code == 0, trained.output
    figures = {}
    for how in ("none", "default"):
        result = cli("evaluate", "--model", "m", "--held-out", essen_slice, "--json",
                     "--within-tune", how, "--per-note", f"{how}.csv")  # fmt: skip
        assert result.exit_code == 0, result.output
        measures = json.loads(result.stdout)["measures"]
        rows = rows_of(tmp_path / f"{how}.csv")
        assert len(rows) == measures["tokens"]
        assert [int(r["position"]) for r in rows[:3]] == [1, 2, 3]
        assert sum(float(r["information_content"]) for r in rows) == pytest.approx(
            measures["bits_per_token"] * measures["tokens"], rel=1e-6
        )
        figures[how] = measures["pitch_bits_per_note"]
    assert figures["default"] < figures["none"]


def test_crossval_fine_tunes_every_fold_from_the_model_given(cli, essen_slice, tmp_path):
    songs = tmp_path / "few"
    songs.mkdir()
    for path in sorted(essen_slice.glob("*.txt"))[:6]:
        shutil.copy(path, songs)
    result = cli("crossval", songs, "--folds", "2", "--from", FIXTURES / "song-rnn",
                 "--epochs", "1", "--steps", "1", "-o", "cv")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "pooled" in result.stdout and "fold 1" in result.stdout
    for k in range(2):
        report = json.loads((tmp_path / "cv" / f"fold-{k}" / "report.json").read_text())
        assert report["model"] == "song-rnn"
        assert report["base"] == str((FIXTURES / "song-rnn").resolve())


def test_crossval_refuses_more_folds_than_songs(cli, essen_slice, tmp_path):
    songs = tmp_path / "two"
    songs.mkdir()
    for path in sorted(essen_slice.glob("*.txt"))[:2]:
        shutil.copy(path, songs)
    result = cli("crossval", songs, "--model", "ngram", "--folds", "3")
    assert result.exit_code != 0
    assert "folds" in result.output and "Traceback" not in result.output
