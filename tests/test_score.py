"""Scores out: the MusicXML melodygen writes, read back by music21 (an independent reader) to
the song's sounding notes, meter, key, tempo and title."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import pytest

from conftest import SONG_FILES, TRICKY, sounding
from melodygen import tasks
from melodygen.notation import parse_song

music21 = pytest.importorskip("music21")


@pytest.mark.parametrize("path", [*SONG_FILES, "tricky"], ids=lambda p: getattr(p, "stem", p))
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


def test_a_triplet_pickup_and_ties_into_another_pitch_read_back_as_written(cli, tmp_path):
    path = tmp_path / "odd.txt"  # a pickup of two triplet eighths; ties that hold nothing
    path.write_text("time: 4/4\ntrip{g8 a8} b4 c'4~ d'4 e'4~ r4 c'#4~ d'-4 a2~\n")
    assert cli("render", str(path), "-o", "odd.MusicXML").exit_code == 0
    assert (tmp_path / "odd.MusicXML").is_file()  # the name as written
    back = music21.converter.parse(tmp_path / "odd.MusicXML")
    notes = back.stripTies().flatten().notesAndRests
    got = [(None if n.isRest else n.pitch.midi, Fraction(n.quarterLength)) for n in notes]
    assert got == sounding(parse_song(path.read_text()))  # c'#4~ d'-4: one note, as it sounds
    written = list(back.flatten().notesAndRests)  # music21's own ties hold one pitch:
    for a, b in zip(written, [*written[1:], None], strict=True):
        if a.tie is not None and a.tie.type in ("start", "continue"):  # none open, none across
            assert b is not None and not b.isRest and b.pitch.midi == a.pitch.midi
    first = back.parts[0].getElementsByClass("Measure")[0]
    assert first.number == 0 and first.duration.quarterLength == Fraction(5, 3)  # g a b4


def test_a_pickup_is_written_as_a_short_first_bar(cli, tmp_path):
    path = tmp_path / "pickup.txt"
    path.write_text("time: 3/4\nkey: D\ng8 a8 b4 c'#4 d'4 e'2 f'#4 g'2. r4 d'8 d'8 d'4\n")
    assert cli("render", str(path), "-o", "p.mxl").exit_code == 0  # compressed MusicXML
    measures = music21.converter.parse(tmp_path / "p.mxl").parts[0].getElementsByClass("Measure")
    assert [m.number for m in measures] == [0, 1, 2, 3, 4]
    assert [m.duration.quarterLength for m in measures] == [1, 3, 3, 3, 3]  # the pickup: g8 a8
    assert [n.nameWithOctave for n in measures[0].notes] == ["G4", "A4"]


def test_the_score_is_engraved_as_svg_and_png_the_same_each_time(cli, tmp_path):
    pytest.importorskip("verovio")
    pytest.importorskip("cairosvg")
    assert cli("render", str(SONG_FILES[0]), "-o", "a.mid", "--score").exit_code == 0
    assert cli("render", str(SONG_FILES[0]), "-o", "b.svg").exit_code == 0  # by its suffix
    svg = (tmp_path / "a.svg").read_text()
    assert svg.startswith("<svg") and svg.count('class="note"') == len(
        [n for n in parse_song(SONG_FILES[0].read_text()).notes if not n.is_rest]
    )
    assert (tmp_path / "b.svg").read_text() == svg and (tmp_path / "b.mid").is_file()
    assert (tmp_path / "a.score.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_draws_the_wrong_notes_red_with_the_true_ones_above(cli, tmp_path):
    pytest.importorskip("verovio")
    nabiya = SONG_FILES[[p.stem for p in SONG_FILES].index("nabiya")]
    model = Path(__file__).parent / "data" / "models" / "ngram"
    args = ("evaluate", nabiya, "--model", model, "--out", "ev", "--score", "--musicxml")
    result = cli(*map(str, args))
    assert result.exit_code == 0, result.output
    evaluated = tasks.evaluate_songs(model, [nabiya], tmp_path / "again").evaluation.songs[0]
    truth = evaluated.song.tokens
    predicted = evaluated.tokens("one_step", tasks.store.load(model).model.vocab)
    wrong = [t for t, p in zip(truth, predicted, strict=True) if t != p]
    assert 0 < len(wrong) < len(truth)  # a model that gets some notes wrong, not all
    svg = (tmp_path / "ev" / "one_step.svg").read_text()
    red = re.findall(r'class="note" color="#FF0000"', svg)
    names = re.findall(r'class="verse" color="#FF0000".*?<tspan[^>]*>([^<]+)</tspan>', svg, re.S)
    assert len(red) == len(wrong) and [n.strip() for n in names] == wrong
    assert svg.count('class="note"') >= len(truth)  # the right ones black (a tie adds one)
    back = music21.converter.parse(tmp_path / "ev" / "one_step.musicxml").flatten().notes
    assert sum(n.style.color == "#FF0000" for n in back) == len(wrong)
