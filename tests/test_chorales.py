"""The Bach chorales export: soprano lines as music21 reads them, pickups kept, ties merged."""

from __future__ import annotations

import functools
from fractions import Fraction

import music21
import pytest

from melodygen import corpus
from melodygen.notation import read_song

BACH = music21.common.getCorpusFilePath() / "bach"
# 269 starts with a one-beat pickup; 261 has ties one token holds, 311 one that no token does;
# 279 sings 158.4's soprano line again; 299 has grace notes.
NAMES = ("bwv158.4", "bwv261", "bwv269", "bwv279", "bwv299", "bwv311")
FILES = [BACH / f"{name}.mxl" for name in NAMES]

pytestmark = pytest.mark.skipif(not BACH.is_dir(), reason="music21's corpus is not installed")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("chorales")
    return corpus.write_chorales(out, files=FILES), out


def soprano(name: str):
    """The soprano part as music21 reads it, without our code."""
    score = music21.converter.parse(BACH / f"{name}.mxl")
    return next(p for p in score.parts if p.partName == "Soprano")


def sounds_of_part(part) -> list[tuple[int | None, Fraction]]:
    """(MIDI pitch, None for a rest; quarter notes) of each note, tied notes as one, from the
    first note to the last."""
    sounds = [
        (None if n.isRest else n.pitch.midi, Fraction(n.quarterLength))
        for n in part.stripTies().flatten().notesAndRests
    ]
    sounding = [i for i, (pitch, _) in enumerate(sounds) if pitch is not None]
    return sounds[sounding[0] : sounding[-1] + 1]


def sounds_of_song(song) -> list[tuple[int | None, Fraction]]:
    sounds: list[tuple[int | None, Fraction]] = []
    held = False
    for note in song.notes:
        if held:
            sounds[-1] = (sounds[-1][0], sounds[-1][1] + note.length)
        else:
            sounds.append((note.midi_pitch, note.length))
        held = note.tie
    return sounds


def test_each_chorale_is_its_soprano_line_with_ties_merged(exported):
    export, out = exported
    assert export.written == 4 and not export.failed
    assert export.skipped == {corpus.SAME_MELODY: 1, "grace notes": 1}
    assert export.names == {corpus.SAME_MELODY: ["bwv279"], "grace notes": ["bwv299"]}
    assert sorted(p.name for p in out.iterdir()) == [
        "bwv158.4.txt", "bwv261.txt", "bwv269.txt", "bwv311.txt"
    ]  # fmt: skip
    for name in ("bwv158.4", "bwv261", "bwv269", "bwv311"):
        song, part = read_song(out / f"{name}.txt"), soprano(name)
        key = part.recurse().getElementsByClass(music21.key.Key).first()
        assert (song.title, song.key) == (name, key.tonicPitchNameWithCase)
        assert sounds_of_song(song) == sounds_of_part(part), name
        last = part.flatten().notes.last()
        assert sum(n.length for n in song.notes) == Fraction(last.offset + last.quarterLength)
    tied, theirs = read_song(out / "bwv261.txt"), soprano("bwv261").flatten().notesAndRests
    assert sum(bool(n.tie) for n in theirs) == 4 and not any(n.tie for n in tied.notes)
    assert len(tied.notes) == len(theirs) - 2 - 1  # 3 and 2 beats one token each; no end rest
    assert read_song(out / "bwv311.txt").tokens[-2:] == ["f#1~", "f#4"]  # 5 beats: two tokens
    assert theirs.last().isRest and not tied.notes[-1].is_rest  # a rest after the last note


def test_a_pickup_is_kept_as_written_with_the_meter_and_key(exported):
    song = read_song(exported[1] / "bwv269.txt")
    part = soprano("bwv269")
    pickup = part.getElementsByClass(music21.stream.Measure).first()
    assert pickup.number == 0 and pickup.paddingLeft == 2  # one beat of a 3/4 bar
    assert (song.time, song.key) == ((3, 4), "G")
    assert song.notes[0].length == Fraction(pickup.notes[0].quarterLength) == 1
    assert not song.notes[0].is_rest


def test_fermatas_change_nothing(exported, tmp_path):
    score = music21.converter.parse(BACH / "bwv269.mxl")
    fermatas = [
        (n, e)
        for n in score.recurse().notes
        for e in n.expressions
        if isinstance(e, music21.expressions.Fermata)
    ]
    assert len(fermatas) > 10  # over all four parts
    for n, e in fermatas:
        n.expressions.remove(e)
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    plain = score.write("musicxml", fp=tmp_path / "in" / "bwv269.musicxml")
    assert corpus.write_chorales(tmp_path / "out", files=[plain]).written == 1
    assert (tmp_path / "out" / "bwv269.txt").read_text() == (exported[1] / "bwv269.txt").read_text()


def test_the_command_writes_the_chorales_and_names_those_it_skipped(cli, monkeypatch, tmp_path):
    files = [BACH / f"{name}.mxl" for name in ("bwv158.4", "bwv279", "bwv299", "bwv311")]
    monkeypatch.setitem(
        corpus.CORPORA, "chorales", functools.partial(corpus.write_chorales, files=files)
    )
    result = cli("corpus", "chorales", "out")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        "wrote 2 songs to out/; skipped 2 chorales (1 the same melody as another chorale: "
        "bwv279; 1 grace notes: bwv299)"
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["bwv158.4.txt", "bwv311.txt"]
    assert "already exists" in cli("corpus", "chorales", "out").stderr
