"""Rhythm measured (docs/cli.md): bar lines where a song's notes fit them, notes crossing them,
tunes lasting whole bars, where notes start in the bar; by hand, and against a restatement."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from melodygen import corpus
from melodygen.encoding import POSITIONS, Start
from melodygen.evaluation import rhythm, song_rhythm
from melodygen.notation import parse_song


def test_a_pickup_puts_the_bar_lines_where_the_notes_fit_them():
    # 2/4 with an eighth-note pickup: from the first note, e4 would cross the first bar line
    song = parse_song("time: 2/4\ng8 | c4 e4 | d4. c8 | c4.")
    assert Start.of(song) == Start((2, 4), 0.5)
    r = song_rhythm(song)
    assert (r.notes, r.crossing, r.tunes, r.whole) == (6, 0, 1, 1)  # pickup + last bar: whole
    places = np.flatnonzero(r.onsets[(2, 4)])
    assert places.tolist() == [0, 24, 36]  # the downbeat, the second beat, its last eighth
    assert r.onsets[(2, 4)][[0, 24, 36]].tolist() == [3, 1, 2]


def test_notes_crossing_and_songs_ending_inside_a_bar():
    # three half notes in 3/4: whichever bar lines, one of them crosses one
    r = song_rhythm(parse_song("time: 3/4\nc2 c2 c2"))
    assert (r.crossing, r.notes, r.whole) == (1, 3, 1)
    assert Start.of(parse_song("time: 3/4\nc2 c2 c2")).phase == 0  # equals: the first note
    r = song_rhythm(parse_song("c4 d4 e4 f4 g2 r4"))  # no meter: 4/4, 7 beats
    assert (r.crossing, r.whole, r.crossing_share) == (0, 0, 0.0)
    both = rhythm([parse_song("time: 3/4\nc2 c2 c2"), parse_song("c4 d4 e4 f4 g2 r4")])
    assert (both.tunes, both.whole, both.notes, both.crossing) == (2, 1, 8, 1)
    assert both.whole_share == 0.5 and both.crossing_share == 1 / 8


def test_the_onsets_distance_is_meter_by_meter():
    waltz = parse_song("time: 3/4\nc2 e4 g2 e4")
    march = parse_song("time: 2/4\nc4 e4 g4 e4")
    assert rhythm([waltz]).onset_distance(rhythm([waltz, march])) == 0.0
    assert rhythm([waltz]).onset_distance(rhythm([march])) == 1.0  # no waltz to compare with
    off = parse_song("time: 3/4\nc4 e2 g4 e2")  # half the notes on the bar's second beat
    assert rhythm([off]).onset_distance(rhythm([waltz])) == pytest.approx(0.5)


def _brute_force(song) -> tuple[int, int, int]:
    """(notes, crossing, whole) with exact fractions, every candidate bar line tried."""
    num, den = song.time or (4, 4)
    bar = Fraction(4 * num, den)
    t, spans = Fraction(0), []
    for note in song.notes:
        if not note.is_rest:
            spans.append((t, t + note.length))
        t += note.length

    def crossings(phase):
        return sum(e - phase > ((s - phase) // bar + 1) * bar for s, e in spans)

    phases = [Fraction(0), *sorted({s % bar for s, _ in spans} - {0})]
    best = min(phases, key=lambda p: (crossings(p), phases.index(p)))
    return len(spans), crossings(best), int(t % bar == 0)


def test_rhythm_of_the_corpus_sample_equals_a_restatement_in_fractions(essen):
    songs = corpus.read([essen]).songs
    expected = [_brute_force(s) for s in songs]
    r = rhythm(songs)
    assert (r.notes, r.crossing, r.whole) == tuple(map(sum, zip(*expected, strict=True)))
    assert r.tunes == len(songs) and 0 < r.crossing_share < 0.05 and r.whole_share > 0.85
    assert sum(int(c.sum()) for c in r.onsets.values()) == r.notes
    assert all(len(c) == POSITIONS for c in r.onsets.values())


def test_train_counts_the_songs_without_a_meter(cli, essen_slice, tmp_path):
    result = cli("train", essen_slice, "--model", "ngram", "-o", "ng")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "ng" / "report.json").read_text())
    songs = corpus.read([essen_slice]).songs
    untimed = sum(s.time is None for s in songs)
    assert report["untimed"] == untimed and sum(report["meters"].values()) == len(songs)
    if untimed:
        assert f"{untimed} songs have no time signature: taken as 4/4" in result.stdout
    evaluated = cli("evaluate", "--held-out", essen_slice, "--json")
    held = [s for s in songs if corpus.file_name(s) in report["held_out"]]
    measured = json.loads(evaluated.stdout)["rhythm"]
    assert measured["songs"]["crossing"] == rhythm(held).crossing
    assert measured["songs"]["onset_distance"] == 0.0
    assert set(measured) == {"songs", "full-song predictions"}
