"""compose: the chapter's full-song loop on numpy, sampling, MIDI out, and its errors."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pretty_midi
import pytest

from conftest import numpy_model
from melodygen.generation import greedy, sampler
from melodygen.midi import PPQ
from melodygen.notation import parse_token


@pytest.fixture
def trained(model_copy):
    """A tiny stateful model on nabiya, recorded as the latest model."""
    return model_copy("stateful")


def test_compose_prints_tokens_and_writes_the_same_notes(cli, trained, tmp_path):
    result = cli("compose", "--seed", "g8,e8,e4,f8", "-o", "out.mid")
    assert result.exit_code == 0, result.output
    assert f"model {trained}" in result.stderr
    tokens = result.stdout.split()
    assert len(tokens) == 54 and tokens[:4] == ["g8", "e8", "e4", "f8"]
    pm = pretty_midi.PrettyMIDI(str(tmp_path / "out.mid"))
    notes = [parse_token(t) for t in tokens if not t.startswith("r")]
    assert [n.pitch for n in pm.instruments[0].notes] == [n.midi_pitch for n in notes]
    ticks = [pm.time_to_tick(n.end) - pm.time_to_tick(n.start) for n in pm.instruments[0].notes]
    assert ticks == [round(n.beats * PPQ) for n in notes]
    assert pm.time_signature_changes[0].numerator == 2  # the song's 2/4


def test_length_tempo_program_and_a_longer_seed(cli, trained, tmp_path):
    seed = "g8,e8,e4,f8,d8,d4,c8"
    result = cli("compose", "--seed", seed, "--length", "5", "--tempo", "90", "--program", "73",
                 "-o", "short.mid", "--model", trained)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.split()[:7] == seed.split(",") and len(result.stdout.split()) == 12
    pm = pretty_midi.PrettyMIDI(str(tmp_path / "short.mid"))
    assert pm.instruments[0].program == 73
    assert pm.get_tempo_changes()[1][0] == pytest.approx(90, abs=1e-3)
    assert cli("compose", "--seed", seed, "--length", "0").stdout.split() == seed.split(",")


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
    assert top1.stdout.split()[:44] == greedy_run.stdout.split()[:44]


def test_sampler_temperature_and_top_k():
    p = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    assert sampler(0) is greedy
    cold = sampler(0.01, seed=1)
    assert {cold(p) for _ in range(50)} == {0}
    top2 = sampler(5.0, top_k=2, seed=1)
    assert {top2(p) for _ in range(200)} == {0, 1}
    plain = sampler(1.0, seed=2)
    counts = np.bincount([plain(p) for _ in range(4000)], minlength=4) / 4000
    np.testing.assert_allclose(counts, np.exp(p), atol=0.03)
    hot = sampler(10.0, seed=2)
    flat = np.bincount([hot(p) for _ in range(4000)], minlength=4) / 4000
    assert flat[3] > 0.15  # flattened towards uniform


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seed", "g8,e8,e4"], "error: --seed: has 3 notes; this model needs at least 4"),
        (["--seed", "g8,e8,e4,f#8"], "--seed: token 'f#8' is not in the model's vocabulary"),
        (["--seed", "g8,e8,e4,h8"], "error: --seed:1:10: bad token 'h8'"),
        (["--seed", "g8,e8,e4,f8", "-o", "missing/out.mid"], "missing does not exist"),
        (["--seed", "g8,e8,e4,f8", "-o", "out.wav"], "out.wav: cannot write .wav"),
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


def test_no_model_says_how_to_train_one(cli):
    result = cli("compose", "--seed", "g8,e8,e4,f8")
    assert result.exit_code == 2 and "melodygen train" in result.stderr


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
    assert len(proc.stdout.split()) == 54 and (elsewhere / "p.mid").is_file()
    assert f"model {trained}" in proc.stderr
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "melodygen.cli" in imported and "numpy" in imported
    assert not {m for m in imported if m.split(".")[0] in ("tensorflow", "keras", "matplotlib")}
