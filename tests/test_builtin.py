"""The built-in model (melodygen/models/essen, shipped in the package) and fine-tuning with
``train --from``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import mido
import numpy as np
import pytest

from conftest import invoke
from melodygen import store, training
from melodygen.evaluation import evaluate
from melodygen.kinds.song_rnn import SONG_RNN, grown
from melodygen.notation import parse_song

TINY = ("--units", "16", "--embedding", "8", "--steps", "1", "--transpose", "0")


def test_compose_with_nothing_trained_uses_the_built_in_model_without_tensorflow(tmp_path):
    """Right after installing: five tunes that end by themselves, in a real process, with no
    TensorFlow loaded, and a line saying which model it used."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "melodygen", "compose", "-n", "5",
         "--random-seed", "1", "-o", "out/t.mid"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
        env={**os.environ, store.STATE_ENV: str(tmp_path / "state")},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "using the built-in model essen" in proc.stderr
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert not {m for m in imported if m.split(".")[0] in ("tensorflow", "keras")}
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 5
    for k in range(1, 6):
        notes = [m for m in mido.MidiFile(tmp_path / "out" / f"t-{k}.mid") if m.type == "note_on"]
        assert 8 <= len(notes) < 300  # it ended the tune itself, long before the length cap
    assert proc.stderr.count("whole bars") == 5


def test_the_built_in_model_is_named_listed_and_never_confused_with_a_directory(cli, tmp_path):
    listed = cli("models")
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.stdout.splitlines() if "essen" in line)
    assert "built-in" in row and "song-rnn" in row
    report = json.loads((store.BUILT_IN / "essen" / store.REPORT_FILE).read_text())
    held = report["measures"]["validation"]
    assert f"{held['pitch_bits_per_note']:.3f}" in row and f"{held['bits_per_token']:.3f}" in row
    result = cli("compose", "--model", "essen", "--random-seed", "2")
    assert result.exit_code == 0 and "model essen" in result.stderr
    (tmp_path / "essen").mkdir()
    result = cli("compose", "--model", "essen", "--random-seed", "2")
    assert result.exit_code == 2 and "write ./essen for the directory" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_built_in_model_is_compact_and_its_float16_weights_predict_as_float32(
    essen_slice, tmp_path
):
    """A model saved compact (float16 weights, songs as token ids) predicts held-out songs as
    its float32 directory does, to 0.002 bits per token; its songs come back token for token."""
    songs = [parse_song(s) for s in ("g8 e8 e4 f8 d8 d4 c8 e8 g8 g8 e4",)]
    from melodygen import corpus

    read = corpus.read([essen_slice]).songs
    spec = SONG_RNN.spec.replace(units=32, embedding=16, epochs=2, steps=1, transpose=(0, 0))
    trained = training.train(SONG_RNN, spec, read[:40], seed=3)
    meta = store.Metadata(SONG_RNN, spec, trained.model.vocab.tokens, tuple(read[:40]), 3)
    store.save(tmp_path / "full", meta, trained.model, {})
    store.save_compact(store.load(tmp_path / "full"), tmp_path / "compact")
    full, compact = store.load(tmp_path / "full"), store.load(tmp_path / "compact")
    assert compact.model.weights[0].dtype == np.float16
    assert [s.tokens for s in compact.meta.songs] == [s.tokens for s in full.meta.songs]
    assert [a.tolist() for a in compact.song_ids] == [b.tolist() for b in full.song_ids]
    held = read[40:60] + songs
    a, b = (evaluate(m.model, held, full_song=False).overall for m in (full, compact))
    assert abs(a.bits_per_token - b.bits_per_token) < 0.002
    sizes = {f.name: f.stat().st_size for f in (tmp_path / "compact").iterdir()}
    assert sizes["weights.npz"] < 0.6 * (tmp_path / "full" / "weights.npz").stat().st_size
    assert store.MODEL_FILE not in sizes
    npz = tmp_path / "compact" / store.SONGS_FILE
    npz.write_bytes(npz.read_bytes()[:-10])
    with pytest.raises(store.BadInput, match=r"songs\.npz does not match the checksum"):
        store.load(tmp_path / "compact")


@pytest.fixture(scope="module")
def base_dir(essen_slice, tmp_path_factory):
    root = tmp_path_factory.mktemp("base")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(store.STATE_ENV, str(root / "state"))
        result = invoke("train", essen_slice, "--model", "song-rnn", *TINY, "--epochs", "1",
                        "-o", root / "base")  # fmt: skip
    assert result.exit_code == 0, result.output
    return root / "base"


def test_a_grown_model_predicts_what_its_base_did_and_new_tokens_as_its_rarest(base_dir):
    base = store.load(base_dir).model
    new = "c'''#16"  # a pitch and length the base has never seen
    assert base.vocab.get(new) is None
    from melodygen.encoding import Vocabulary

    tokens = base.vocab.tokens[: base.vocab.song_tokens]
    vocab = Vocabulary.from_songs([[new], tokens], SONG_RNN.specials)
    fresh = [np.random.default_rng(0).normal(size=w).astype(np.float32)
             for w in SONG_RNN.weight_shapes(base.spec, len(vocab))]  # fmt: skip
    weights = grown(base, vocab, fresh)
    old = base.predictor().reset()[0]
    now = type(base)(base.kind, base.spec, vocab, tuple(weights)).predictor().reset()[0]
    known = [vocab.get(t) for t in base.vocab.tokens]
    # the same logits (up to the softmax's shift) for every token the base knows
    shift = now[known] - old
    assert np.allclose(shift, shift[0], atol=1e-5)
    kernel, bias = weights[-2:]
    assert (kernel[:, vocab.get(new)] == 0).all() and bias[vocab.get(new)] == base.weights[-1].min()
    assert np.array_equal(kernel[:, known], base.weights[-2])  # the base's own columns


def test_fine_tune_a_model_on_a_few_songs(cli, base_dir, tmp_path):
    """Fewer songs than a corpus (the kind comes from --from), a token new to the base: an
    ordinary model directory that names its base; refused for another kind, other sizes or a
    model that is not one, each in one line."""
    songs = tmp_path / "mine"
    songs.mkdir()
    for i, body in enumerate(["g8 e8 e4 f8 d8 d4 c'''#16 c'''#16 c8", "c4 d4 e4 f4 g2 g2",
                              "e8 f8 g4 g4 a8 g8 f4 e4"]):  # fmt: skip
        (songs / f"s{i}.txt").write_text(body + "\n")
    result = cli("train", songs, "--from", base_dir, "--epochs", "2", "-o", "tuned")
    assert result.exit_code == 0, result.output
    assert f"fine-tuned from {base_dir}" in result.stdout
    meta = json.loads((tmp_path / "tuned" / "melodygen.json").read_text())
    assert meta["model"] == "song-rnn" and meta["base"] == str(base_dir)
    assert meta["spec"]["units"] == 16 and meta["spec"]["learning_rate"] == 0.003
    assert "c'''#16" in meta["vocabulary"]
    assert json.loads((tmp_path / "tuned" / "report.json").read_text())["base"] == str(base_dir)
    assert cli("compose", "--model", "tuned", "--random-seed", "1").exit_code == 0

    ngram = cli("train", songs, "--model", "ngram", "-o", "ng")
    assert ngram.exit_code == 0
    for args, says in [
        (("--from", "ng"), "a ngram model cannot be fine-tuned"),
        (("--from", base_dir, "--model", "ngram"), "fine-tunes a model of its own kind"),
        (("--from", base_dir, "--units", "32"), "keeps its base's sizes"),
        (("--from", tmp_path / "nothing"), "no such model directory"),
    ]:
        result = cli("train", songs, *args, "--epochs", "1", "-o", "x")
        assert result.exit_code == 2 and says in result.stderr, result.output
        assert len(result.stderr.strip().splitlines()) == 1
    broken = tmp_path / "broken"
    shutil.copytree(base_dir, broken)
    (broken / "weights.npz").write_bytes(b"not weights")
    result = cli("train", songs, "--from", broken, "--epochs", "1", "-o", "x")
    assert result.exit_code == 2 and "not a usable melodygen model" in result.stderr
    assert not (tmp_path / "x").exists()


def test_a_small_collection_fine_tunes_the_built_in_model_by_default(cli, essen_slice, tmp_path):
    songs = tmp_path / "mine"
    songs.mkdir()
    for path in sorted(essen_slice.iterdir())[:24]:
        shutil.copy(path, songs)
    result = cli("train", songs, "--epochs", "1", "-o", "m")
    assert result.exit_code == 0, result.output
    assert "fine-tuned from essen" in result.stdout
    meta = json.loads((tmp_path / "m" / "melodygen.json").read_text())
    essen = json.loads((store.BUILT_IN / "essen" / "melodygen.json").read_text())
    assert meta["base"] == "essen" and meta["spec"]["units"] == essen["spec"]["units"]
    assert set(essen["vocabulary"]) <= set(meta["vocabulary"])
