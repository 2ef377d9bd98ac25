"""Model kinds as units: every model directory an earlier release wrote still loads and
composes the same bytes, training today gives the weights that release's training gave, and the
command line's options, limits and help are read from the kinds' specs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import FIXTURES, NABIYA, assert_same_weights, invoke, saved_weights, tokens
from melodygen import store
from melodygen.errors import BadInput
from melodygen.kinds import CHAPTER_KINDS, KINDS
from melodygen.kinds.song_rnn import SONG_RNN

COMPOSE = json.loads((FIXTURES / "compose.json").read_text())  # kind -> compose options


@pytest.mark.parametrize("kind", sorted(COMPOSE))
def test_a_model_directory_of_an_earlier_release_composes_the_same_bytes(cli, kind, tmp_path):
    for i, options in enumerate(COMPOSE[kind], 1):
        result = cli("compose", "--model", FIXTURES / kind, "--random-seed", "1", *options,
                     "-o", "tune.mid")  # fmt: skip
        assert result.exit_code == 0, result.output
        # the same tokens (compose prints bar lines since this release)
        expected = (FIXTURES / f"{kind}-{i}.txt").read_text().splitlines()
        assert [tokens(line) for line in result.stdout.splitlines()] == [
            line.split() for line in expected
        ], (kind, options)
        assert (tmp_path / "tune.mid").read_bytes() == (FIXTURES / f"{kind}-{i}.mid").read_bytes()


@pytest.mark.parametrize("kind", ["mlp", "lstm", "stateful", "stateful-features"])
def test_the_chapters_kinds_train_the_weights_an_earlier_release_trained(trained_models, kind):
    """The session's models are trained as the fixtures were: compare nabiya, 3 epochs, 8
    units, seed 5."""
    assert_same_weights(saved_weights(trained_models[kind]), saved_weights(FIXTURES / kind))
    mine = json.loads((trained_models[kind] / "melodygen.json").read_text())
    theirs = json.loads((FIXTURES / kind / "melodygen.json").read_text())
    assert mine["vocabulary"] == theirs["vocabulary"]


def _shown(value) -> str:
    """A default as the help shows it."""
    if value is None or isinstance(value, bool):
        return {None: "none", True: "on", False: "off"}[value]
    if isinstance(value, tuple):
        return f"{value[0]}..{value[1]}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def help_words(*command: str) -> list[str]:
    """`melodygen COMMAND --help` at 80 columns as a stream of words, the boxes removed; every
    line fits in 80 columns and nothing is cut short."""
    result = invoke(*command, "--help", env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80
    assert "…" not in result.output
    return re.sub(r"[│╭╮╰╯─]", " ", result.output).split()


def option_help(words: list[str], flag: str) -> str:
    """The words from ``flag`` to the next option's flag."""
    start = words.index(flag)
    end = next((i for i in range(start + 1, len(words)) if words[i].startswith("--")), None)
    return " ".join(words[start:end])


def test_train_help_at_80_columns_gives_every_kind_and_setting_with_each_kinds_default():
    words = help_words("train")
    text = " ".join(words)
    assert all(f" {name}," in text or f" {name} " in text for name in KINDS)  # --model's list
    for kind in KINDS.values():
        for s in kind.spec.settings():
            help = option_help(words, s.flag)
            assert s.help.lower() in help.lower(), s.name
            assert kind.name in help and _shown(getattr(kind.spec, s.name)) in help, (kind, s)
    # the panels, in order
    assert [w for w in words if w in ("Model", "Training", "Corpus", "Output")][:4] == [
        "Model", "Training", "Corpus", "Output",
    ]  # fmt: skip


def test_compare_takes_the_settings_the_chapters_four_share():
    words = help_words("compare")
    shared = set.intersection(*({s.name for s in KINDS[k].spec.settings()} for k in CHAPTER_KINDS))
    flags = {w for w in words if w.startswith("--") and w not in ("--help", "--out")}
    assert flags == {f"--{n.replace('_', '-')}" for n in shared} | {"--random-seed", "--valid"}


def test_settings_out_of_range_or_for_another_kind(cli):
    result = cli("train", NABIYA, "--model", "mlp", "--units", "5000")
    assert result.exit_code == 2 and "--units" in result.stderr
    result = cli("train", NABIYA, "--model", "song-rnn", "--transpose", "3..1")
    assert result.exit_code == 2 and "--transpose: expected LOW..HIGH" in result.stderr
    result = cli("train", NABIYA, "--model", "mlp", "--order", "3", "--epochs", "1",
                 "--units", "4", "-o", "m")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "warning: --order is not a setting of mlp: ignored" in result.stderr
    result = cli("train", NABIYA, "--seed", "4")  # compose's --seed is the melody
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: --seed is compose's melody to continue; the random seed is --random-seed"
    )


def test_a_spec_checks_every_setting_against_its_range():
    spec = SONG_RNN.spec
    assert spec.replace(transpose=(0, 0)).transpose == (0, 0)
    for name, value in [("units", 0), ("dropout", 0.95), ("transpose", (3, 1)),
                        ("layers", 2.5), ("patience", True), ("epochs", None)]:  # fmt: skip
        with pytest.raises(BadInput, match="must be") as e:
            spec.replace(**{name: value})
        assert e.value.parameter == name
    assert spec.replace(patience=None).patience is None  # optional: none is a value
    assert spec.from_json(spec.replace(units=8).to_json()) == spec.replace(units=8)
    # a setting a directory lacks: what a model had before the setting existed, else the default
    assert spec.from_json({"units": 8}) == spec.replace(units=8, meter="none", steps=1)
    with pytest.raises(ValueError, match="unknown setting 'window'"):
        spec.from_json({"window": 4})
    for kind in KINDS.values():  # every default is one its setting can take
        for s in kind.spec.settings():
            s.check(getattr(kind.spec, s.name))


EXPECTED_ENCODING = {
    "mlp": "vocabulary index / 13",  # nabiya's 14 tokens
    "lstm": "vocabulary index / 13",
    "stateful": "vocabulary index / 13",
    "stateful-features": "(pitch, duration): pitch = diatonic steps above middle C / 6",
    "ngram": "the last 7 tokens",  # order 8
    "song-rnn": "the token that followed the song's latest repeat",
}


@pytest.mark.parametrize("kind", sorted(COMPOSE))
def test_melodygen_json_describes_each_kinds_inputs(cli, kind, tmp_path):
    """The model directory a release wrote, saved again by today's code."""
    loaded = store.load(FIXTURES / kind)
    store.save(tmp_path / "again", loaded.meta, loaded.model, {})
    meta = json.loads((tmp_path / "again" / "melodygen.json").read_text())
    assert meta["format"] == store.FORMAT and meta["spec"] == loaded.meta.spec.to_json()
    assert EXPECTED_ENCODING[kind] in meta["encoding"]
    assert store.load(tmp_path / "again").model.spec == loaded.model.spec


def test_tables_are_printed_whole_on_a_pipe(cli, essen_slice):
    """Not on a terminal (a pipe, a log), rich would cut the tables at the width it assumes."""
    result = invoke("train", essen_slice, "--model", "ngram", "-o", "ng", env={"COLUMNS": "40"})
    assert result.exit_code == 0, result.output
    report = json.loads((Path("ng") / "report.json").read_text())
    training = report["measures"]["training"]
    assert f"{report['one_step_correct']} of {training['predictions']}" in result.stdout
    assert " ngram " in result.stdout and "…" not in result.stdout
