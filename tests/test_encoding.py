"""Encoding against the chapter's own numbers, and its extension to the whole notation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from conftest import CHAPTER_SEQ
from melodygen.encoding import CHAPTER_TOKENS, Vocabulary, transpose
from melodygen.errors import BadInput
from melodygen.kinds.window import input_table, note_to_features, one_hot, windows
from melodygen.notation import parse_song, parse_token

CODE2IDX = {"c4": 0, "d4": 1, "e4": 2, "f4": 3, "g4": 4, "a4": 5, "b4": 6,
            "c8": 7, "d8": 8, "e8": 9, "f8": 10, "g8": 11, "a8": 12, "b8": 13}  # fmt: skip
CODE2SCALE = {"c": 0, "d": 1, "e": 2, "f": 3, "g": 4, "a": 5, "b": 6}
CODE2LENGTH = {"4": 0, "8": 1}


def chapter_dataset(seq, window_size):
    """The chapter's seq2dataset, verbatim."""
    dataset = []
    for i in range(len(seq) - window_size):
        subset = seq[i : (i + window_size + 1)]
        dataset.append([CODE2IDX[item] for item in subset])
    return np.array(dataset)


def test_vocabulary_starts_with_the_chapters_codes():
    vocab = Vocabulary.from_songs([CHAPTER_SEQ])
    assert vocab.tokens == (*CODE2IDX, "<unk>")  # the chapter's codes, then the unknown class
    assert [vocab.index(t) for t in CODE2IDX] == list(CODE2IDX.values())
    assert vocab.encode(["g8", "f#8"]) == [11, 14]  # an unseen token is <unk>
    with pytest.raises(BadInput, match="'<unk>' is not in the model's vocabulary"):
        vocab.index("<unk>")  # a seed must be made of song tokens
    assert Vocabulary.from_songs([["c4"]], ("<end>", "<unk>")).tokens[-2:] == ("<end>", "<unk>")


def test_extra_tokens_longest_first_then_low_to_high_rests_last():
    vocab = Vocabulary.from_songs([["g8", "c'4", "r8", "f#16", "C4", "e2", "r2", "G2", "d4."]])
    assert vocab.tokens[:14] == CHAPTER_TOKENS
    assert vocab.tokens[14:] == ("G2", "e2", "r2", "d4.", "C4", "c'4", "r8", "f#16", "<unk>")


def test_index_windows_equal_the_chapters_dataset():
    vocab = Vocabulary.from_songs([CHAPTER_SEQ])
    w, y = windows([vocab.index(t) for t in CHAPTER_SEQ], 4)
    expected = chapter_dataset(CHAPTER_SEQ, 4)
    assert expected.shape == (50, 5)
    assert expected[0].tolist() == [11, 9, 2, 10, 8] and expected[-1].tolist() == [11, 11, 9, 9, 2]
    assert np.array_equal(w, expected[:, :4]) and np.array_equal(y, expected[:, 4])
    table = input_table(vocab, "index")
    x = table[w][..., 0]
    assert np.allclose(x, (expected[:, :4] / float(13)).astype(np.float32), atol=0, rtol=0)
    assert table[vocab.unknown, 0] == np.float32(14 / 13)  # <unk>: the value after the last
    labels = one_hot(y, len(vocab))
    assert labels.shape == (50, 15) and np.array_equal(labels.argmax(1), expected[:, 4])


def test_features_equal_code2features_on_the_chapters_codes():
    vocab = Vocabulary.from_songs([CHAPTER_SEQ])
    table = input_table(vocab, "features")
    for code, i in CODE2IDX.items():
        expected = [CODE2SCALE[code[0]] / 6.0, CODE2LENGTH[code[1]]]
        assert table[i].tolist() == pytest.approx(expected, abs=1e-7), code


@pytest.mark.parametrize(
    ("token", "pitch", "duration"),
    [
        ("c'4", 7 / 6, 0.0),  # an octave up is 7 steps
        ("C8", -7 / 6, 1.0),
        ("f#8", 3.5 / 6, 1.0),  # a sharp is half a step up
        ("b-4", 5.5 / 6, 0.0),
        ("g2", 4 / 6, -1.0),  # half: -1; sixteenth: 2; a dot lengthens
        ("a16", 5 / 6, 2.0),
        ("d4.", 1 / 6, -np.log2(1.5)),
    ],
)
def test_features_extend_to_the_whole_notation(token, pitch, duration):
    assert note_to_features(parse_token(token)) == pytest.approx((pitch, duration))


def test_rests_never_share_features_with_a_note():
    rests = {note_to_features(parse_token(f"r{d}")) for d in (1, 2, 4, 8, 16, 32)}
    notes = {
        note_to_features(parse_token(f"{letter}{marks}{acc}{d}"))
        for letter in "cdefgabCDEFGAB"
        for marks in ("", "'")
        if letter.islower() or marks == ""
        for acc in ("", "#", "-", "##", "--")
        for d in (1, 2, 4, 8, 16, 32)
    }
    assert not rests & notes


def test_windows_never_need_more_than_the_song():
    with pytest.raises(ValueError, match="at least window"):
        windows([1, 2, 3, 4], 4)


@pytest.mark.parametrize("semitones", range(-5, 7))
def test_transposition_keeps_intervals_and_spells_for_the_key(semitones):
    e_minor = parse_song("e4 f#8 g8 a4 b4 c'8 d'#8 e'2 r4 B4 e2").notes
    moved = transpose(e_minor, semitones)
    assert [n.is_rest for n in moved] == [n.is_rest for n in e_minor]
    assert [n.beats for n in moved] == [n.beats for n in e_minor]
    assert all(
        a.midi_pitch - b.midi_pitch == semitones
        for a, b in zip(moved, e_minor, strict=True)
        if not a.is_rest
    )
    # the scale degrees keep their letters in order: e f# g a b c' d'# e' has 7 letters
    letters = "cdefgab"
    steps = [
        (letters.index(b.letter) - letters.index(a.letter)) % 7
        for a, b in itertools.pairwise(moved[:8])
    ]
    assert steps == [1, 1, 1, 1, 1, 1, 1]
    # one spelling per letter throughout, as a key signature gives (no g- beside f# in E minor)
    alters = {(n.letter, n.alter) for n in moved if not n.is_rest}
    assert len(alters) == len({letter for letter, _ in alters})


def test_transposition_examples_and_range():
    def moved(text, k):
        return " ".join(n.token for n in transpose(parse_song(text).notes, k))

    assert moved("e4 f#8 g8", -4) == "c4 d8 e-8"  # C minor has flats: no d#
    assert moved("f4 b-4 a4", 2) == "g4 c'4 b4"  # F major to G major
    assert moved("c4 e4 g4", 6) == "f#4 a#4 c'#4"  # F# (6 sharps) over G- (6 flats): the tie
    assert transpose(parse_song("g''''4").notes, 13) is None  # beyond MIDI's 127
