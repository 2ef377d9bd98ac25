"""Music theory as pure functions of pitches, spellings and times: keys, the line of fifths,
spelling a pitch in a key, estimating a melody's key, and where its bar lines fall. It imports
nothing of melodygen, so notation, import, composing, encoding and the measures share one
definition of each.

A spelling is a letter (``"c"``..``"b"``) and an alteration in semitones (``+1`` a sharp, ``-1``
a flat); a key is named as music21 names it: upper case major, lower case minor, ``-`` a flat
(``"E-"`` is E-flat major, ``"f#"`` F-sharp minor).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # respell replaces the spelling of notation's notes; notation imports us
    from melodygen.notation import Note

LETTERS = "cdefgab"  # the chapter's order: the index is the diatonic step within an octave
LETTER_SEMITONES = (0, 2, 4, 5, 7, 9, 11)  # semitones above C of each letter
ACCIDENTALS = {"##": 2, "#": 1, "--": -2, "-": -1}  # spelling -> semitones
ALTER_SPELLING = {v: k for k, v in ACCIDENTALS.items()} | {0: ""}
FIFTHS = "fcgdaeb"  # the naturals along the line of fifths: f -1, c 0, g 1 ... b 5
PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")  # for people


def fifths_of(letter: str, alter: int) -> int:
    """A spelling's place on the line of fifths: c 0, g 1, f -1, b- -2, f# 6."""
    return FIFTHS.index(letter) - 1 + 7 * alter


def spelled(fifths: int) -> tuple[str, int]:
    """(letter, alter) at a place on the line of fifths: 0 is c, 6 is f#, -2 is b-."""
    return FIFTHS[(fifths + 1) % 7], (fifths + 1) // 7


def octave_of(pitch: int, letter: str, alter: int) -> int:
    """The scientific octave in which ``letter`` with ``alter`` sounds as MIDI ``pitch`` (b#3 is
    MIDI 60, as c4 is)."""
    return (pitch - LETTER_SEMITONES[LETTERS.index(letter)] - alter) // 12 - 1


def _key_name(fifths: int, minor: bool) -> str:
    letter, alter = spelled(fifths)
    return (letter if minor else letter.upper()) + ALTER_SPELLING[alter]


# Keys with up to seven sharps or flats, what a MIDI key signature holds; the value is the key
# signature's sharps (negative: flats).
KEYS = {_key_name(f + 3 * minor, minor): f for minor in (False, True) for f in range(-7, 8)}


def tonic_of(key: str) -> int:
    """The pitch class of a key's tonic: 0 for C and c, 10 for B- and b-."""
    return (LETTER_SEMITONES[LETTERS.index(key[0].lower())] + ACCIDENTALS.get(key[1:], 0)) % 12


def key_on(tonic: int, minor: bool) -> str:
    """The key on a pitch class as KEYS names it: of its two spellings the one with fewer
    accidentals, then flats (D- major, not C#; g# minor, not a-)."""
    return min(
        (k for k in KEYS if k[0].islower() == minor and tonic_of(k) == tonic),
        key=lambda k: (abs(KEYS[k]), KEYS[k]),
    )


MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)  # semitones above the tonic
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10, 11)  # the natural minor, and the leading tone minor tunes use
_KEY_TEXT = re.compile(r"([A-Ga-g])(#|b|-)?\s*(m|min|minor|maj|major)?", re.IGNORECASE)


def parse_key(text: str) -> str:
    """A key as people write it, D, Em, F#m, Bb, "G minor", or as the notation does (e-, f#),
    named as KEYS names it; ValueError saying what is expected otherwise."""
    m = _KEY_TEXT.fullmatch(text.strip())
    mode = (m[3] or "").lower() if m else ""
    if m and ((m[3] is None and m[1].islower()) or mode in ("m", "min", "minor")):
        key = m[1].lower() + {"#": "#", "b": "-", "-": "-"}.get(m[2] or "", "")
    elif m:
        key = m[1].upper() + {"#": "#", "b": "-", "-": "-"}.get(m[2] or "", "")
    if not m or key not in KEYS:
        raise ValueError(
            f"expected a key such as D, Bb, Em or F#m (at most seven sharps or flats), not {text!r}"
        )
    return key


def scale_of(key: str) -> frozenset[int]:
    """The pitch classes of a key's scale: its major scale, or its natural minor with the raised
    seventh."""
    steps = MINOR_SCALE if key[0].islower() else MAJOR_SCALE
    return frozenset((tonic_of(key) + step) % 12 for step in steps)


def key_for_people(key: str) -> str:
    """ "D-" -> "Db major", "f#" -> "F# minor"."""
    mode = "minor" if key[0].islower() else "major"
    return f"{key[0].upper()}{key[1:].replace('-', 'b')} {mode}"


def pitch_name(pitch: int) -> str:
    """A MIDI pitch as people read it on a chart: 60 is C4, 70 is Bb4."""
    return f"{PITCH_NAMES[pitch % 12]}{pitch // 12 - 1}"


def spell(pitch: int, key: str | None = None) -> tuple[str, int, int]:
    """(letter, alter, octave) of ``pitch`` spelled for ``key``: white keys natural, each black
    key as the sharp or the flat that lies in the key's window of the line of fifths (F# minor's
    c# and g#, A-flat major's d- and g-; a minor key's window leans sharp for its raised 6th and
    7th, so D minor has c#). No key spells as C major: c# e- f# a- b-."""
    fifths = KEYS.get(key or "C", 0)
    low = fifths - 2 if key and key.islower() else fifths - 4  # minor keys raise 6th and 7th
    pc = pitch % 12
    if pc in LETTER_SEMITONES:
        letter, alter = LETTERS[LETTER_SEMITONES.index(pc)], 0
    else:
        sharp = fifths_of(LETTERS[LETTER_SEMITONES.index(pc - 1)], 1)
        letter, alter = spelled(sharp if sharp < low + 12 else sharp - 12)
    return letter, alter, octave_of(pitch, letter, alter)


def respell(notes: Sequence[Note], key: str) -> tuple[Note, ...]:
    """The notes with each pitch spelled for ``key`` (spell), lengths, ties and triplets kept:
    a composed tune whose model knows both c#4 and d-4 reads in one key."""
    return tuple(note if note.is_rest else _respelled(note, key) for note in notes)


@functools.lru_cache(maxsize=4096)  # tunes share a few hundred notes, as parse_token's do
def _respelled(note: Note, key: str) -> Note:
    letter, alter, octave = spell(note.midi_pitch, key)  # type: ignore[arg-type]
    return dataclasses.replace(note, letter=letter, octave=octave, alter=alter)


_KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


# The 24 profiles in the order key_of ranks them: the major keys on C, C#... B, then the minor
_PROFILES = np.array([np.roll(p, t) for p in (_KK_MAJOR, _KK_MINOR) for t in range(12)])
_CENTERED = _PROFILES - _PROFILES.mean(1, keepdims=True)


def key_of(sounds: Iterable[tuple[int, float]]) -> str | None:
    """The key of a melody's (pitch, length) sounds: the one whose Krumhansl-Kessler profile
    correlates best with the time spent on each pitch class (the Krumhansl-Schmuckler
    algorithm), named as key_on names it; None without sounds."""
    weights = np.zeros(12)
    for pitch, length in sounds:
        weights[pitch % 12] += float(length)
    if not weights.any():
        return None
    # All 24 correlations in one product; np.corrcoef's, one at a time, decide where two come
    # within rounding of each other or none is defined (the same time on every pitch class)
    centered = weights - weights.mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (_CENTERED @ centered) / np.sqrt((_CENTERED**2).sum(1) * (centered @ centered))
    first, second = np.sort(r)[::-1][:2]
    if np.isfinite(r).all() and first - second > 1e-9:
        minor, tonic = divmod(int(np.argmax(r)), 12)
        return key_on(tonic, bool(minor))
    scores = [
        (float(np.corrcoef(weights, profile)[0, 1]), tonic, minor)
        for minor, profiles in ((False, _PROFILES[:12]), (True, _PROFILES[12:]))
        for tonic, profile in enumerate(profiles)
    ]
    _, tonic, minor = max(scores, key=lambda s: np.nan_to_num(s[0], nan=-2))
    return key_on(tonic, minor)


DEFAULT_METER = (4, 4)  # a song without a time signature
EPSILON = 1e-9  # of a quarter note: times are sums of exact lengths, added up in floats


def bar_length(meter: tuple[int, int]) -> float:
    """A bar's length in quarter notes: 3/4 is 3, 6/8 is 3, 2/2 is 4."""
    return 4 * meter[0] / meter[1]


def crossing(starts: np.ndarray, ends: np.ndarray, bar: float, phase: float = 0.0) -> np.ndarray:
    """Which notes (start and end times in quarter notes) sound past the end of the bar they
    start in, the bar lines falling at ``phase`` + k bars."""
    first = np.floor((starts - phase) / bar + EPSILON)  # the bar each note starts in
    return ends - phase > (first + 1) * bar + EPSILON


def bar_phase(starts: np.ndarray, ends: np.ndarray, bar: float) -> float:
    """Where a melody's bar lines fall, as an offset from its start (0 <= phase < bar): of the
    places a note starts, the one that makes the fewest notes cross a bar line, 0 among equals.
    The notation writes no pickup; this is where a musician hears the first bar line."""
    candidates = np.unique(np.round(np.mod(starts, bar), 9))
    candidates = np.concatenate([[0.0], candidates[candidates > EPSILON]])
    counts = [int(crossing(starts, ends, bar, p).sum()) for p in candidates]
    return float(candidates[int(np.argmin(counts))])  # argmin: the first, 0, among equals


def bar_positions(starts: np.ndarray, bar: float, phase: float, steps: int) -> np.ndarray:
    """Each start's place in its bar, in ``steps`` equal parts of the bar (0 on the bar line)."""
    within = np.mod(starts - phase + EPSILON, bar) / bar
    return np.minimum((within * steps).astype(np.int64), steps - 1)
