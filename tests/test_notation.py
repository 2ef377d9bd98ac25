"""The notation contract (NOTATION.md), rule by rule, with music21's tinyNotation as an oracle."""

from __future__ import annotations

import music21
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import CHAPTER_SEQ, NABIYA, SONGS, write
from melodygen import corpus
from melodygen.errors import MelodygenError
from melodygen.notation import (
    DURATIONS,
    Note,
    Song,
    TokenError,
    format_song,
    merge_ties,
    parse_song,
    parse_token,
    read_song,
)
from melodygen.theory import (
    _KK_MAJOR,
    _KK_MINOR,
    KEYS,
    LETTERS,
    key_for_people,
    key_of,
    key_on,
    parse_key,
    scale_of,
)

# token -> (MIDI pitch or None for a rest, length in beats)
TOKENS = {
    "g8": (67, 0.5),  # the chapter's tokens keep the chapter's meaning
    "e4": (64, 1.0),
    "c4": (60, 1.0),
    "b8": (71, 0.5),
    "C4": (48, 1.0),  # uppercase: one octave lower
    "CC2": (36, 2.0),  # doubled: one more
    "B1": (59, 4.0),
    "c'4": (72, 1.0),  # each mark one octave up
    "e''8": (88, 0.5),
    "f'#8": (78, 0.5),  # marks before the accidental
    "c#4": (61, 1.0),
    "c##4": (62, 1.0),
    "b-8": (70, 0.5),
    "B--4": (57, 1.0),
    "g2": (67, 2.0),
    "a1": (69, 4.0),
    "d16": (62, 0.25),
    "e32": (64, 0.125),
    "c4.": (60, 1.5),
    "c4..": (60, 1.75),
    "G2.": (55, 3.0),
    "r4": (None, 1.0),
    "r8.": (None, 0.75),
    "r1..": (None, 7.0),
    "c4~": (60, 1.0),  # tied into the next note
    "trip{c8}": (60, 1 / 3),  # one note of a triplet group
    "trip{e4}": (64, 2 / 3),
    "trip{r16}": (None, 1 / 6),
}


@pytest.mark.parametrize(("token", "expected"), TOKENS.items())
def test_token_pitch_and_length(token, expected):
    note = parse_token(token)
    assert (note.midi_pitch, note.beats) == expected
    assert note.token == token


@pytest.mark.parametrize("token", TOKENS)
def test_music21_tinynotation_agrees(token):
    (element,) = music21.converter.parse(f"tinyNotation: {token}").flatten().notesAndRests
    midi = None if element.isRest else element.pitch.midi
    assert (midi, float(element.quarterLength)) == TOKENS[token]


def test_chapter_codes_match_the_chapter():
    # c d e f g a b = do re mi fa sol la ti, 4 = quarter, 8 = eighth, middle octave
    for i, letter in enumerate(LETTERS):
        assert parse_token(f"{letter}4").midi_pitch == [60, 62, 64, 65, 67, 69, 71][i]
        assert parse_token(f"{letter}8").beats == 0.5


@pytest.mark.parametrize(
    ("token", "offset", "fragment"),
    [
        ("h4", 0, "unknown pitch letter 'h'"),
        ("c3", 1, "duration 3 is not allowed"),
        ("c5", 1, "duration 5 is not allowed"),
        ("c64", 1, "duration 64 is not allowed"),
        ("c", 1, "expected a duration"),
        ("c#", 2, "expected a duration"),
        ("C'4", 1, "lowercase letters only"),
        ("c###4", 1, "bad accidental"),
        ("c-#4", 1, "bad accidental"),
        ("r#4", 1, "rest takes no accidental"),
        ("c4...", 2, "at most two dots"),
        ("c4x", 2, "unexpected 'x'"),
        ("CD4", 1, "expected a duration"),
        ("g''''''4", 0, "outside MIDI"),
        ("R4", 0, "unknown pitch letter"),
        ("r4~", 2, "a rest cannot be tied"),
        ("c4~~", 3, "unexpected '~'"),
        ("trip{c3}", 6, "duration 3"),
    ],
)
def test_bad_tokens_say_where_and_what(token, offset, fragment):
    with pytest.raises(TokenError) as info:
        parse_token(token)
    assert fragment in str(info.value)
    assert info.value.offset == offset


def test_separators_bars_and_comments():
    song = parse_song("g8,e8 e4|f8 | d8,,d4 # a comment e4\n  # whole-line comment\nc#4 #c4")
    assert song.tokens == ["g8", "e8", "e4", "f8", "d8", "d4", "c#4"]


def test_header_fields():
    song = parse_song("title: Butterfly: a song\ntempo: 96.5\ntime: 6/8\nprogram: 73\ng8")
    assert (song.title, song.tempo, song.time, song.program) == (
        "Butterfly: a song",
        96.5,
        (6, 8),
        73,
    )
    assert song.tokens == ["g8"]


def test_header_may_follow_comments_and_blank_lines():
    song = parse_song("# about\n\ntime: 2/4\n\ng8 e8")
    assert song.time == (2, 4) and song.tokens == ["g8", "e8"]


@pytest.mark.parametrize(
    ("text", "where", "fragment"),
    [
        ("g8 e8\nc4 d4\nc4 h4 d4", "x.txt:3:4:", "unknown pitch letter 'h'"),
        ("g8\n  c3", "x.txt:2:4:", "duration 3"),
        ("mode: C\ng8", "x.txt:1:1:", "unknown header key 'mode'"),
        ("key: Bb\ng8", "x.txt:1:5:", "(flats are written with '-': B-)"),
        ("tempo: fast\ng8", "x.txt:1:7:", "tempo must be a number"),
        ("tempo: 0\ng8", "x.txt:1:7:", "between 1 and 1000"),
        ("time: 3/5\ng8", "x.txt:1:6:", "time signature"),
        ("program: 128\ng8", "x.txt:1:9:", "0-127"),
        ("title: a\ntitle: b\ng8", "x.txt:2:1:", "given twice"),
        ("g8\ntempo: 90\ng8", "x.txt:2:1:", "before the first note"),
        ("g8 e8 e4, f8x", "x.txt:1:13:", "unexpected 'x'"),
    ],
)
def test_bad_song_names_file_line_and_column(text, where, fragment):
    with pytest.raises(MelodygenError) as info:
        parse_song(text, source="x.txt")
    message = str(info.value)
    assert message.startswith(where), message
    assert fragment in message
    assert "\n" not in message


def test_nabiya_is_the_chapters_song():
    song = read_song(NABIYA)
    assert song.tokens == CHAPTER_SEQ
    assert song.time == (2, 4)


def test_songs_cover_the_notation():
    songs = corpus.read([SONGS]).songs
    assert len(songs) >= 6
    notes = [n for s in songs for n in s.notes]
    assert any(n.dots for n in notes), "dotted notes"
    assert any(n.is_rest for n in notes), "rests"
    assert any(n.duration == 2 for n in notes), "half notes"
    assert any(n.alter > 0 for n in notes) and any(n.alter < 0 for n in notes), "sharps and flats"
    pitches = [n.midi_pitch for n in notes if not n.is_rest]
    assert max(pitches) - min(pitches) > 12, "more than one octave"
    for song in songs:  # whole bars: every song fills its time signature exactly
        numerator, denominator = song.time
        assert sum(n.beats for n in song.notes) % (numerator * 4 / denominator) == 0, song.name


def test_read_song_accepts_bom_and_rejects_non_utf8(tmp_path):
    (tmp_path / "bom.txt").write_bytes("\ufefftitle: x\ng8 e8".encode())
    assert read_song(tmp_path / "bom.txt").tokens == ["g8", "e8"]
    (tmp_path / "latin.txt").write_bytes(b"title: caf\xe9\ng8")
    with pytest.raises(MelodygenError, match=r"latin.txt:1:11: not UTF-8"):
        read_song(tmp_path / "latin.txt")
    (tmp_path / "bin.txt").write_bytes(b"\x00\x01\x02g8")
    with pytest.raises(MelodygenError, match="binary"):
        read_song(tmp_path / "bin.txt")


def test_empty_song_and_empty_directory(tmp_path):
    write(tmp_path / "empty.txt", "# only a comment\ntitle: nothing\n")
    with pytest.raises(MelodygenError, match="no notes"):
        read_song(tmp_path / "empty.txt")
    (tmp_path / "dir").mkdir()
    with pytest.raises(MelodygenError, match="no songs"):
        corpus.read([tmp_path / "dir"])


notes = st.builds(
    Note,
    letter=st.sampled_from(LETTERS),
    duration=st.sampled_from(DURATIONS),
    dots=st.integers(0, 2),
    octave=st.integers(0, 8),
    alter=st.integers(-2, 2),
    tie=st.booleans(),
    triplet=st.booleans(),
)
rests = st.builds(
    Note,
    letter=st.none(),
    duration=st.sampled_from(DURATIONS),
    dots=st.integers(0, 2),
    triplet=st.booleans(),
)


@given(st.one_of(notes, rests))
def test_format_then_parse_is_the_identity(note):
    assert parse_token(note.token) == note


@given(
    st.lists(st.one_of(notes, rests), min_size=1, max_size=40),
    st.sampled_from([(2, 4), (3, 4), (6, 8), None]),
    st.sampled_from([None, *KEYS]),
)
def test_format_song_then_parse_song_is_the_identity(notes_, time, key):
    song = Song(tuple(notes_), title="t", tempo=90.0, time=time, program=5, key=key)
    again = parse_song(format_song(song))
    assert again.notes == song.notes
    assert (again.title, again.tempo, again.time, again.program) == ("t", 90.0, time, 5)
    assert again.key == key


@pytest.mark.parametrize(
    ("written", "learned"),
    [
        ("c4~ c8 d4", "c4. d4"),  # one token has the length
        ("c4~ c4~ c4 d4", "c2. d4"),
        ("trip{c8~ c8} d4", "trip{c4} d4"),  # a tied triplet run
        ("c1~ c1~ c1 r4", "c1.~ c1. r4"),  # no token is 12 beats: the fewest tied tokens
        ("c4~ d4", "c4 d4"),  # a tie into another pitch holds nothing
        ("c32.~ c8", "c32.~ c8"),  # 11/16 of a beat is no sum of the lengths import writes
        ("trip{c4.} r4 r4", "trip{c4.} r4 r4"),  # untied tokens stay as written
    ],
)
def test_models_learn_tied_runs_merged(written, learned, tmp_path):
    assert " ".join(n.token for n in merge_ties(parse_song(written).notes)) == learned
    write(tmp_path / "song.txt", written)
    assert " ".join(corpus.read([tmp_path]).songs[0].tokens) == learned


def test_keys_are_named_with_the_fewest_accidentals_then_flats():
    assert [key_on(t, False) for t in range(12)] == [
        "C", "D-", "D", "E-", "E", "F", "G-", "G", "A-", "A", "B-", "B"
    ]  # fmt: skip
    assert [key_on(t, True) for t in range(12)] == [
        "c", "c#", "d", "e-", "e", "f", "f#", "g", "g#", "a", "b-", "b"
    ]  # fmt: skip
    assert all(key_on(t, m) in KEYS for t in range(12) for m in (False, True))
    assert [key_for_people(k) for k in ("D-", "f#", "C")] == ["Db major", "F# minor", "C major"]


@pytest.mark.parametrize(
    ("text", "key"),
    [("D", "D"), ("Em", "e"), ("F#m", "f#"), ("Bb", "B-"), ("G minor", "g"), ("Eb major", "E-"),
     ("e-", "e-"), ("f#", "f#"), ("C", "C"), ("c#m", "c#")],
)  # fmt: skip
def test_keys_as_people_and_the_notation_write_them(text, key):
    assert parse_key(text) == key


@pytest.mark.parametrize("text", ["H", "Gbm", "Fbm", "D dorian", "", "Cbb"])
def test_a_key_that_is_none_is_one_clear_error(text):
    with pytest.raises(ValueError, match="expected a key such as D, Bb, Em or F#m"):
        parse_key(text)


def test_a_keys_scale_major_or_minor_with_its_leading_tone():
    assert sorted(scale_of("D")) == [1, 2, 4, 6, 7, 9, 11]  # D E F# G A B C#
    assert sorted(scale_of("e")) == [0, 2, 3, 4, 6, 7, 9, 11]  # E F# G A B C D, and D#


def test_the_key_estimate_is_krumhansl_schmuckler_as_np_corrcoef_ranks_it():
    """key_of's 24 correlations in one product pick the key that np.corrcoef, one profile at a
    time with the first of equals, picks: also for ties and for no correlation at all."""

    def one_at_a_time(sounds):
        weights = np.zeros(12)
        for pitch, length in sounds:
            weights[pitch % 12] += length
        scores = [(np.corrcoef(weights, np.roll(profile, tonic))[0, 1], tonic, minor)
                  for minor, profile in ((False, _KK_MAJOR), (True, _KK_MINOR))
                  for tonic in range(12)]  # fmt: skip
        _, tonic, minor = max(scores, key=lambda s: np.nan_to_num(s[0], nan=-2))
        return key_on(tonic, minor)

    rng = np.random.default_rng(0)
    cases = [[(60 + i, 1.0) for i in range(12)], [(60, 1.0)], [(60, 1.0), (66, 1.0)]]
    cases += [[(60 + i, 1.0), (66 + i, 1.0)] for i in range(12)]  # tritones: ties
    cases += [list(zip(rng.integers(40, 90, n).tolist(), rng.choice([0.5, 1.0, 2.0], n).tolist(),
                       strict=True)) for n in rng.integers(1, 20, 300)]  # fmt: skip
    with np.errstate(invalid="ignore", divide="ignore"):
        assert [key_of(c) for c in cases] == [one_at_a_time(c) for c in cases]
    assert key_of([]) is None
