"""Songs as ABC notation (the v2.1 standard, abcnotation.com/wiki/abc:standard:v2.1), which
folk musicians read, abc2midi plays and abcm2ps engraves. music21 reads ABC but cannot write
it, so melodygen writes it itself.

How a song becomes a tune: its notes are cut at the bar lines of its meter (a pickup bar when
its notes fit bar lines after its start best: score.pickup_of) and tied across them;
a length no single ABC note has is written as tied notes, longest first; notes that sound a
non-dyadic length (triplets, or notes a triplet put off the beat grid) are written inside
``(3`` groups (a group closes where its notes add up to a length plain notes have), or
``(3:2:n`` for a group of other than three notes. Each note's accidental is written against
the key signature and the accidentals before it in its bar, so that every reader sounds the
song's pitch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction

from melodygen.encoding import meter_of
from melodygen.notation import Note, Song
from melodygen.score import pickup_of
from melodygen.theory import FIFTHS, KEYS

VERSION = "%abc-2.1"  # music21 carries accidentals through the bar only when a file says 2.x
BARS_PER_LINE = 4
ACCIDENTAL = {2: "^^", 1: "^", 0: "=", -1: "_", -2: "__"}
# Lengths one ABC note is written with (in quarter notes): plain, dotted and double-dotted
# values from a 256th to a breve, longest first.
VALUES = sorted(
    (Fraction(2) ** k * f for k in range(-6, 4) for f in (1, Fraction(3, 2), Fraction(7, 4))),
    reverse=True,
)
TRIPLET = Fraction(2, 3)  # a note in a (3 group sounds two thirds of its written length


@dataclass
class _Piece:
    """One ABC note or rest: where it starts in its bar, how long it sounds and is written,
    and whether it is tied into the next and written in a tuplet."""

    note: Note  # the pitch (its length is not used)
    start: Fraction
    written: Fraction
    tuplet: bool
    tie: bool = False


def abc(song: Song, number: int = 1) -> str:
    """The song as an ABC file of one tune numbered ``number`` (X:), the same text for the same
    song. It starts with the ``%abc-2.1`` line: without it music21 reads ABC 1.x, where an
    accidental holds only its own note (files joined with blank lines are one file of several
    tunes: a repeated version line is a comment).

    The unit length (L:) is an eighth, what folk tunes use, or a sixteenth when the song has
    sixteenths or shorter notes, so most lengths are whole numbers of units. The tempo (Q:) is
    rounded to whole beats per minute, as ABC writes it."""
    numerator, denominator = meter_of(song)
    short = any(n.duration >= 16 for n in song.notes)
    unit = Fraction(1, 4) if short else Fraction(1, 2)  # in quarter notes
    header = [VERSION, f"X:{number}", "T:" + (song.title or song.name).replace("%", r"\%")]
    header += [f"M:{numerator}/{denominator}", f"L:1/{16 if short else 8}"]
    if song.tempo:
        header.append(f"Q:1/4={round(song.tempo)}")
    header.append(f"K:{abc_key(song.key)}")
    return "\n".join(header + _body(song, unit)) + "\n"


def abc_key(key: str | None) -> str:
    """A key of theory.KEYS as ABC's K: field writes it: "f#" is F#m, "B-" is Bb; None is C."""
    if key is None:
        return "C"
    name = key[0].upper() + key[1:].replace("-", "b")
    return name + "m" if key[0].islower() else name


def _signature(key: str | None) -> dict[str, int]:
    """Each letter's alteration in the key signature: sharps along the line of fifths from f,
    flats back from b."""
    fifths = KEYS[key] if key else 0
    return {
        letter: (1 if i < fifths else -1 if i >= 7 + fifths else 0)
        for i, letter in enumerate(FIFTHS)
    }


def _beat(meter: tuple[int, int]) -> Fraction:
    """The span eighths are beamed within: the beat (a dotted quarter in 6/8, 9/8, 12/8, the
    whole bar of 3/8), or a quarter in 5/8 and 7/8."""
    numerator, denominator = meter
    if denominator >= 8:
        return Fraction(12, denominator) if numerator % 3 == 0 else Fraction(1)
    return Fraction(4, denominator)


def _dyadic(x: Fraction) -> bool:
    return x.denominator & (x.denominator - 1) == 0


def _split(written: Fraction) -> list[Fraction]:
    """A written length as ABC notes tied together: one where one note has it, else the
    longest that fits first."""
    out = []
    while written:
        value = next(v for v in VALUES if v <= written)
        out.append(value)
        written -= value
    return out


def _bars(song: Song, phase: Fraction) -> list[list[_Piece]]:
    """The song's notes cut at its bar lines and into writable lengths, bar by bar. A tie is
    kept into a note of the same pitch only (into another it holds nothing, but abc2midi and
    music21 would hold the first pitch on), and that note is spelled as the one tied into it
    (a tie joins two notes written alike). ``phase``: the pickup's length, if any."""
    meter = meter_of(song)
    bar = Fraction(4 * meter[0], meter[1])
    first = phase or bar  # the first bar line; a pickup bar starts before the song does
    bars: list[list[_Piece]] = [[]]
    notes = list(song.notes)
    at = Fraction(0)
    for i, note in enumerate(notes):
        tied = note.tie and i + 1 < len(notes) and notes[i + 1].midi_pitch == note.midi_pitch
        if tied:
            notes[i + 1] = replace(
                notes[i + 1], letter=note.letter, octave=note.octave, alter=note.alter
            )
        end, last = at + note.length, None
        while at < end:
            bar_end = first + bar * (len(bars) - 1)
            stop = min(end, bar_end)
            # in a tuplet: a triplet whole, or a piece of a note no plain note is as long as
            tuplet = not _dyadic(stop - at) or (note.triplet and stop - at == note.length)
            start = at - (bar_end - bar)  # in the bar
            for value in _split((stop - at) / TRIPLET if tuplet else stop - at):
                last = _Piece(note, start, value, tuplet, tie=not note.is_rest)
                bars[-1].append(last)
                start += value * TRIPLET if tuplet else value
            at = stop
            if at == bar_end and (at < end or i + 1 < len(notes)):
                bars.append([])
        if last:
            last.tie = tied
    return bars


def _body(song: Song, unit: Fraction) -> list[str]:
    """The tune's lines: BARS_PER_LINE bars each (after a pickup bar), ``|]`` at the end."""
    signature = _signature(song.key)
    beat = _beat(meter_of(song))
    phase = pickup_of(song)
    lines, line = [], ""
    bars = _bars(song, phase) if song.notes else []
    for k, pieces in enumerate(bars):
        line += _bar(pieces, signature, beat, unit)
        full = k + (not phase)  # bars so far, the pickup not counted
        if k + 1 == len(bars):
            line += " |]"
        elif full % BARS_PER_LINE == 0 and full:
            lines.append(line + " |")
            line = ""
        else:
            line += " | "
    return [*lines, line or "|]"]


def _bar(pieces: list[_Piece], signature: dict[str, int], beat: Fraction, unit: Fraction) -> str:
    """One bar's notes: a space before each that starts a beat, none within a tuplet group."""
    carried: dict[object, int] = {}  # accidentals so far: by letter, and by letter and octave
    text = ""
    i = 0
    while i < len(pieces):
        group = [pieces[i]]
        if pieces[i].tuplet:  # the run's notes until they add up to a plain length
            sounding = pieces[i].written * TRIPLET
            while not _dyadic(sounding) and i + len(group) < len(pieces):
                if not pieces[i + len(group)].tuplet:
                    break
                group.append(pieces[i + len(group)])
                sounding += group[-1].written * TRIPLET
        if text and group[0].start % beat == 0:
            text += " "
        if group[0].tuplet:
            text += "(3" if len(group) == 3 else f"(3:2:{len(group)}"
        for piece in group:
            text += _pitch(piece.note, signature, carried) + _length(piece.written / unit)
            text += "-" * piece.tie
        i += len(group)
    return text


def _pitch(note: Note, signature: dict[str, int], carried: dict[object, int]) -> str:
    """A note's letter, octave marks and the accidental it needs: written unless the key and
    the accidentals before it in the bar already give its pitch, whether they hold for its
    letter in every octave (the standard's reading, abc2midi's and music21's) or in its octave
    only (some engravers'); a double sharp or flat always (music21 carries it as a single)."""
    if note.is_rest:
        return "z"
    letter = note.letter.upper() if note.octave <= 4 else note.letter
    letter += "," * (4 - note.octave) + "'" * (note.octave - 5)
    implied = signature[note.letter]
    heard = {carried.get(note.letter, implied), carried.get((note.letter, note.octave), implied)}
    if heard == {note.alter} and abs(note.alter) < 2:
        return letter
    carried[note.letter] = carried[note.letter, note.octave] = note.alter
    return ACCIDENTAL[note.alter] + letter


def _length(units: Fraction) -> str:
    """A length in units of L: as ABC writes it, "" for one unit, "3", "/2", "3/2"."""
    if units == 1:
        return ""
    if units.denominator == 1:
        return str(units.numerator)
    return f"{'' if units.numerator == 1 else units.numerator}/{units.denominator}"
