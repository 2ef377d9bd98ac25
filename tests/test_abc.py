"""ABC out: the tune melodygen writes, read back by music21 to the song's sounding notes, meter,
key and title, and played by abc2midi to the notes of melodygen's own MIDI."""

from __future__ import annotations

import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from conftest import SONG_FILES, TRICKY, midi_notes, sounding
from melodygen.abc import abc, abc_key
from melodygen.midi import song_to_midi
from melodygen.notation import parse_song, read_song

# An eighth before the first bar line; in D major, f and c written natural, sharp and natural
# again within one bar, and a natural tied over a bar line (its accidental said again there)
PICKUP = """title: Pickup in six-eight
time: 6/8
key: D
tempo: 100
a8 d'8 f'8 f'8 f'#8 f'4 c'4. c'#8 c'8 c'#8 b4.~ b8 a8 g8 f#4 f8 f#4 f8 e4. d4 f2 r4. d'2.
"""
# Irregular triplet runs (four, two, one), notes a triplet leaves off the beat crossing bar
# lines, notes longer than a bar, double sharps and flats, the lowest and highest octaves
ODD = """title: Odd lengths
time: 2/4
trip{c8 d8 e8 f8} g4 a4 trip{b4 c'8} d'4 trip{e'4} f'##8 g'--8 g'--8 CC4 c'''4
r1 c2.. d32 e32 e1~ e8 trip{r8 f4}
"""
EXTRA = {"tricky": TRICKY, "pickup": PICKUP, "odd": ODD}
CASES = [*SONG_FILES, *EXTRA]


def song_of(case):
    if isinstance(case, Path):
        return read_song(case)
    return parse_song(EXTRA[case], name=case)


def read_back(music21, text):
    """What music21 hears in the ABC: (MIDI pitch or None, quarter notes), runs of rests one."""
    notes = music21.converter.parse(text, format="abc").stripTies().flatten().notesAndRests
    out: list = []
    for n in notes:
        pitch, length = None if n.isRest else n.pitch.midi, Fraction(n.quarterLength)
        if out and pitch is None and out[-1][0] is None:
            out[-1] = (None, out[-1][1] + length)
        else:
            out.append((pitch, length))
    return out


@pytest.mark.parametrize("case", CASES, ids=lambda c: getattr(c, "stem", c))
def test_music21_reads_the_abc_back_to_the_song(case):
    music21 = pytest.importorskip("music21")
    song = song_of(case)
    text = abc(song)
    assert read_back(music21, text) == sounding(song, rests=True)
    score = music21.converter.parse(text, format="abc")
    meter = score.flatten().getElementsByClass("TimeSignature")[0]
    assert (meter.numerator, meter.denominator) == (song.time or (4, 4))
    assert score.metadata.bestTitle == (song.title or song.name)
    if song.key:
        key = score.flatten().getElementsByClass("KeySignature")[0]
        assert key.sharps == music21.key.Key(song.key).sharps
        assert key.tonicPitchNameWithCase == song.key
    assert abc(song) == text  # the same song, the same text


@pytest.mark.skipif(shutil.which("abc2midi") is None, reason="abc2midi is not installed")
@pytest.mark.parametrize("case", CASES, ids=lambda c: getattr(c, "stem", c))
def test_abc2midi_plays_the_notes_of_melodygens_midi(case, tmp_path):
    song = song_of(case)
    (tmp_path / "song.abc").write_text(abc(song), encoding="utf-8")
    run = subprocess.run(["abc2midi", "song.abc", "-o", "song.mid"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "rror" not in run.stdout + run.stderr
    theirs, ours = midi_notes((tmp_path / "song.mid").read_bytes()), midi_notes(song_to_midi(song))
    assert [n[0] for n in theirs] == [n[0] for n in ours]
    # abc2midi starts each note a tick late (of 480 a beat): within two ticks is the same time
    for (_, start, end), (_, our_start, our_end) in zip(theirs, ours, strict=True):
        assert abs(start - our_start) <= Fraction(2, 480), (start, our_start)
        assert abs(end - our_end) <= Fraction(2, 480), (end, our_end)


def test_the_header_names_the_tune_its_meter_unit_tempo_and_key():
    text = abc(song_of("tricky"), number=7)
    assert text.splitlines()[:7] == [
        "%abc-2.1",
        "X:7",
        "T:Ties, triplets and a short last bar",
        "M:3/4",
        "L:1/16",  # it has sixteenths
        "Q:1/4=90",
        "K:Bbm",
    ]
    plain = abc(parse_song("c4 d8 e8"))
    assert plain.splitlines()[1:] == ["X:1", "T:song", "M:4/4", "L:1/8", "K:C", "C2 DE |]"]
    assert [abc_key(k) for k in ("G", "f#", "B-", "e-", "c#", None)] == [
        "G", "F#m", "Bb", "Ebm", "C#m", "C"
    ]  # fmt: skip


def body(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if line[1:2] != ":" and line[0] != "%")


def test_a_pickup_bar_ties_over_bar_lines_and_accidentals_hold_to_the_bar_line():
    assert body(abc(song_of("pickup"))) == (
        "A | d=ff ^f=f2 | =c3 ^c=c^c | B3- BAG | F2=F ^F2=F |\nE3 D2=F- | =F3 z3 | d6 |]"
    )


def test_triplets_are_written_in_3_groups_and_irregular_runs_say_how_many_notes():
    assert body(abc(parse_song("time: 2/4\ntrip{c8 d8 e8 f8 g8 a8} c4 trip{c4 d8} r4"))) == (
        "(3CDE (3FGA | C2 (3:2:2C2D | z2 |]"
    )
    # A lone triplet eighth puts what follows off the beat: the notes are cut at the bar lines
    # into lengths only triplets have, and a group closes where its notes add up to a plain length
    text = body(abc(parse_song("time: 2/4\nc2 c2 c2 c2 c4 trip{d8} e4 f2 g4")))
    assert text == "C4 | C4 | C4 | C4 |\nC2 (3:2:2DE2- | (3EF4-F- | (3:2:1FG2 |]"


def test_octaves_and_lengths_as_abc_writes_them():
    # two beats before the first bar line: the whole note fits the bar after them
    assert body(abc(parse_song("CC4 C4 c4 c'4 c''2 B1 b-16 b-32 b-32. r16.."))) == (
        "C,,4 C,4 | C4 c4 c'8 | B,16 | _BB/2B3/4z7/4 |]"
    )
