from __future__ import annotations

import io
import shutil
import tarfile
from fractions import Fraction
from pathlib import Path

import mido
import numpy as np
import pytest
from typer.testing import CliRunner

from melodygen import store
from melodygen.cli import app
from melodygen.encoding import Vocabulary
from melodygen.kinds import CHAPTER_KINDS, KINDS, Model
from melodygen.notation import read_song

ROOT = Path(__file__).resolve().parent.parent
SONGS = ROOT / "songs"
NABIYA = SONGS / "nabiya.txt"
# The chapter's 54 notes, as the chapter's code lists them.
CHAPTER_SEQ = [
    'g8', 'e8', 'e4', 'f8', 'd8', 'd4', 'c8', 'd8', 'e8', 'f8', 'g8', 'g8', 'g4',
    'g8', 'e8', 'e8', 'e8', 'f8', 'd8', 'd4', 'c8', 'e8', 'g8', 'g8', 'e8', 'e8', 'e4',
    'd8', 'd8', 'd8', 'd8', 'd8', 'e8', 'f4', 'e8', 'e8', 'e8', 'e8', 'e8', 'f8', 'g4',
    'g8', 'e8', 'e4', 'f8', 'd8', 'd4', 'c8', 'e8', 'g8', 'g8', 'e8', 'e8', 'e4',
]  # fmt: skip
TINY = ("--epochs", "3", "--units", "8")  # a real model, trained in a second


@pytest.fixture(autouse=True)
def state_dir(tmp_path_factory, monkeypatch):
    """Each test records its latest model in its own state directory, never the user's."""
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv(store.STATE_ENV, str(state))
    return state


def invoke(*args: str | Path, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """Run melodygen in a fresh working directory; returns the click Result."""
    monkeypatch.chdir(tmp_path)
    return invoke


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory) -> dict[str, Path]:
    """The chapter's four kinds, tiny, trained on nabiya once per session by ``compare``, which
    writes a model directory for each (``train`` with the same options writes the same
    bytes: test_train_cli). Tests that change a model work on a copy (``model_copy``)."""
    root = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(store.STATE_ENV, str(root / "state"))
        result = invoke("compare", NABIYA, *TINY, "--out", root / "compare")
    assert result.exit_code == 0, result.output
    (root / "compare.stdout").write_text(result.stdout)
    return {kind: root / "compare" / kind for kind in CHAPTER_KINDS}


@pytest.fixture
def model_copy(trained_models, tmp_path):
    """A copy of a session model, recorded as the latest: ``model_copy("stateful")``."""

    def copy(kind: str = "stateful") -> Path:
        path = tmp_path / f"model-{kind}"
        shutil.copytree(trained_models[kind], path)
        store.record_latest(path)
        return path

    return copy


def numpy_model(path: Path, kind: str = "stateful", units: int = 8, seed: int = 0) -> Path:
    """A model directory written from random numpy weights, without TensorFlow: for tests of
    loading, checking and composing that need no training."""
    song = read_song(NABIYA)
    vocab = Vocabulary.from_songs([song.tokens])
    spec = KINDS[kind].spec.replace(units=units)
    rng = np.random.default_rng(seed)
    shapes = KINDS[kind].weight_shapes(spec, len(vocab))
    weights = tuple(rng.normal(0, 0.5, shape).astype(np.float32) for shape in shapes)
    meta = store.Metadata(KINDS[kind], spec, vocab.tokens, songs=(song,), seed=seed)
    model = Model(KINDS[kind], spec, vocab, weights)
    store.save(path, meta, model, {store.MODEL_FILE: b"not used without TensorFlow"})
    return path


def tokens(line: str) -> list[str]:
    """A line compose printed as its tokens, without the bar lines (``|``) it writes."""
    return [t for t in line.split() if t != "|"]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


ESSEN = ROOT / "tests" / "data" / "essen-sample.tar.xz"  # 383 Essen tunes: make_essen_sample.py


@pytest.fixture(scope="session")
def essen(tmp_path_factory) -> Path:
    """The tests' own Essen sample, unpacked once per session: 383 songs."""
    root = tmp_path_factory.mktemp("essen")
    with tarfile.open(ESSEN) as archive:
        archive.extractall(root, filter="data")
    return root / "essen-sample"


@pytest.fixture(scope="session")
def essen_slice(essen, tmp_path_factory) -> Path:
    """A small corpus: the first 60 Essen songs by name (7 of them held out by the CRC rule)."""
    root = tmp_path_factory.mktemp("slice") / "essen-slice"
    root.mkdir()
    for path in sorted(essen.iterdir())[:60]:
        shutil.copy(path, root)
    return root


FIXTURES = ROOT / "tests" / "data" / "models"  # written by tests/data/make_models.py


def saved_weights(directory: Path) -> list[np.ndarray]:
    """A model directory's weights.npz, as numpy reads it."""
    with np.load(directory / "weights.npz") as npz:
        return [npz[f"arr_{i}"] for i in range(len(npz.files))]


def assert_same_weights(ours, theirs) -> None:
    """Equal to float tolerance: the same arithmetic, perhaps on another CPU's instructions."""
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


SONG_FILES = sorted(SONGS.glob("*.txt"))  # the seven songs of songs/
TRICKY = """title: Ties, triplets and a short last bar
time: 3/4
key: b-
tempo: 90
c4 d2~ d4 e4 trip{c8 d8 e8} r4 f'#4. g8 b-8 a2 c''16 r16 B-8
"""


def sounding(song, rests: bool = False) -> list:
    """(MIDI pitch or None, quarter notes) of each sounding note: a tied run is one, and with
    ``rests`` so is a run of rests (a score may split a rest at a bar line)."""
    out: list = []
    for n in song.notes:
        if out and n.midi_pitch == out[-1][0] and (out[-1][2] or (rests and n.is_rest)):
            out[-1] = (n.midi_pitch, out[-1][1] + n.length, n.tie)
        else:
            out.append((n.midi_pitch, n.length, n.tie and not n.is_rest))
    return [(p, length) for p, length, _ in out]


def midi_notes(data: bytes) -> list[tuple[int, Fraction, Fraction]]:
    """(pitch, start, end) of each note, in quarter notes, from a MIDI file's bytes."""
    file = mido.MidiFile(file=io.BytesIO(data))
    notes, held = [], {}
    for track in file.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "note_on" and msg.velocity:
                held[msg.channel, msg.note] = tick
            elif msg.type in ("note_on", "note_off") and (msg.channel, msg.note) in held:
                start = held.pop((msg.channel, msg.note))
                beat = file.ticks_per_beat
                notes.append((msg.note, Fraction(start, beat), Fraction(tick, beat)))
    return sorted(notes, key=lambda n: (n[1], n[0]))
