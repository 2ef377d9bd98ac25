"""Pictures: what a reader must be able to see in them."""

from __future__ import annotations

import itertools

import pytest

from conftest import CHAPTER_SEQ
from melodygen import plots
from melodygen.notation import parse_song


def test_piano_roll_labels_every_used_pitch_and_separates_repeated_notes():
    truth = CHAPTER_SEQ[:12]  # g8 e8 e4 f8 d8 d4 c8 d8 e8 f8 g8 g8
    predicted = [*truth[:4], "b8", *truth[5:]]  # one wrong note, a pitch the song lacks
    fig = plots.prediction_figure(truth, {"one-step": predicted}, 4, "test")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["C4", "D4", "E4", "F4", "G4", "B4"]
    predicted_bars = sorted(
        (p.get_x(), p.get_width(), p.get_y()) for p in ax.patches if p.get_height() == 0.6
    )
    assert len(predicted_bars) == len(truth)
    for (x1, w1, y1), (x2, _, y2) in itertools.pairwise(predicted_bars):
        if y1 == y2:  # a repeated note (e8 e4, g8 g8): a visible gap before the next
            assert x1 + w1 < x2 - 0.1
    assert "1 of 8 wrong" in ax.get_title()
    assert plots._png(fig)[:8] == b"\x89PNG\r\n\x1a\n"


def test_piano_roll_joins_tied_notes():
    song = parse_song("c4~ c4 c4 trip{d8~ d8} e4")
    ax = plots.piano_roll_figure(song, 0, "ties").axes[0]
    bars = sorted((p.get_x(), p.get_x() + p.get_width()) for p in ax.patches)
    assert bars[0][1] == bars[1][0]  # c4~ c4: one sounding note, drawn joined
    assert bars[1][1] < bars[2][0] - 0.1  # the next c4 is struck again: a gap
    assert bars[3][1] == pytest.approx(bars[4][0])  # a tie inside a triplet


def test_pitch_rows_are_named_as_the_tune_spells_them():
    song = parse_song("key: D\nd4 f#4 g#4 a-4 a4 c''#4 r4 g#4 e-4", source="x")
    labels = [t.get_text() for t in plots.piano_roll_figure(song, 0, "t").axes[0].get_yticklabels()]
    # g# twice and a- once: the row reads G#4; e- as written: Eb4, not D#4
    assert labels == ["D4", "Eb4", "F#4", "G#4", "A4", "C#6"]
    truth = ["g8", "b-8", "g8"]  # the song's b- comes first, then the prediction's a#
    fig = plots.prediction_figure(truth, {"one-step": ["g8", "a#8", "g8"]}, 1, "t")
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["G4", "Bb4"]
