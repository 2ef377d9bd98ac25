"""Scores out: the MusicXML melodygen writes, read back by music21 (an independent reader) to
the song's sounding notes, meter, key, tempo and title."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from melodygen.notation import parse_song

music21 = pytest.importorskip("music21")
SONGS = sorted((Path(__file__).parent.parent / "songs").glob("*.txt"))
TRICKY = """title: Ties, triplets and a short last bar
time: 3/4
key: b-
tempo: 90
c4 d2~ d4 e4 trip{c8 d8 e8} r4 f'#4. g8 b-8 a2 c''16 r16 B-8
"""


def sounding(song):
    """(MIDI pitch or None, quarter notes) of each sounding note: a tied run is one."""
    out: list = []
    for n in song.notes:
        if out and out[-1][2] and n.midi_pitch == out[-1][0]:
            out[-1] = (n.midi_pitch, out[-1][1] + n.length, n.tie)
        else:
            out.append((n.midi_pitch, n.length, n.tie and not n.is_rest))
    return [(p, length) for p, length, _ in out]


@pytest.mark.parametrize("path", [*SONGS, "tricky"], ids=lambda p: getattr(p, "stem", p))
def test_render_writes_musicxml_that_music21_reads_back_to_the_song(cli, tmp_path, path):
    if path == "tricky":
        path = tmp_path / "tricky.txt"
        path.write_text(TRICKY)
    song = parse_song(path.read_text(), source=str(path))
    out = tmp_path / "out" / "song.musicxml"
    result = cli("render", str(path), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "song.mid").is_file()  # MIDI beside it, as for .wav and .txt
    back = music21.converter.parse(str(out))
    notes = back.stripTies().flatten().notesAndRests
    got = [(None if n.isRest else n.pitch.midi, Fraction(n.quarterLength)) for n in notes]
    assert got == sounding(song)
    meter = back.flatten().getElementsByClass("TimeSignature")[0]
    assert (meter.numerator, meter.denominator) == (song.time or (4, 4))
    assert back.metadata.bestTitle == (song.title or song.name)
    if song.key:
        assert (
            back.flatten().getElementsByClass("KeySignature")[0].tonicPitchNameWithCase == song.key
        )
    if song.tempo:
        assert back.flatten().getElementsByClass("MetronomeMark")[0].number == song.tempo
    again = tmp_path / "again.musicxml"
    assert cli("render", str(path), "-o", str(again)).exit_code == 0
    assert again.read_bytes() == out.read_bytes()  # the same song, the same bytes
