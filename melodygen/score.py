"""Songs as scores: MusicXML through music21 (`pip install "melodygen[corpus]"`), which a
notation program (MuseScore) or an engraver (Verovio) opens.

music21 already knows how a musician writes a line: it splits notes at bar lines and ties them,
beams eighths within the beat, groups triplets and writes pickups as measure 0
(``makeNotation``), so melodygen builds a music21 part note for note and lets it notate.
music21 is imported only here, when a score is asked for.
"""

from __future__ import annotations

import os
import re
import tempfile
from fractions import Fraction

from melodygen.encoding import meter_of
from melodygen.errors import BadInput
from melodygen.notation import Note, Song

SUFFIXES = (".musicxml",)


def _music21():
    try:
        import music21
    except ImportError:
        raise BadInput(
            'writing a score needs music21: pip install "melodygen[corpus]"', "out"
        ) from None
    return music21


def to_score(song: Song):
    """A music21 Score of the song: its title, tempo, meter and key, then its notes and rests as
    written (pitch spelled as the song spells it), notated by music21 (bars, ties, beams)."""
    m21 = _music21()
    part = m21.stream.Part()
    numerator, denominator = meter_of(song)
    part.append(m21.meter.TimeSignature(f"{numerator}/{denominator}"))
    if song.key:  # "G", "f#" (minor), "B-": music21's own spelling
        part.append(m21.key.Key(song.key))
    if song.tempo:
        part.append(m21.tempo.MetronomeMark(number=song.tempo))
    tied = False  # the note before was tied into this one
    for note in song.notes:
        element = _element(m21, note)
        if not note.is_rest and (note.tie or tied):
            kind = "continue" if note.tie and tied else "start" if note.tie else "stop"
            element.tie = m21.tie.Tie(kind)
        tied = note.tie and not note.is_rest
        part.append(element)
    part.makeNotation(inPlace=True)
    last = part.getElementsByClass("Measure")[-1]  # a last bar left short stays short:
    last.paddingRight = max(last.barDuration.quarterLength - last.duration.quarterLength, 0)
    score = m21.stream.Score([part])  # (without padding the writer fills it with rests)
    score.metadata = m21.metadata.Metadata(title=song.title or song.name or "")
    return score


def _element(m21, note: Note):
    length = Fraction(note.length)
    if note.is_rest:
        return m21.note.Rest(quarterLength=length)
    pitch = m21.pitch.Pitch(step=note.letter.upper(), octave=note.octave)
    if note.alter:
        pitch.accidental = m21.pitch.Accidental(note.alter)
    return m21.note.Note(pitch, quarterLength=length)


def musicxml(song: Song) -> bytes:
    """The song as an uncompressed MusicXML file, the same bytes for the same song (music21's
    date of writing left out, its random part id made "P1")."""
    score = to_score(song)
    with tempfile.TemporaryDirectory(prefix="melodygen-score-") as tmp:
        path = score.write("musicxml", fp=os.path.join(tmp, "song.musicxml"))
        with open(path, "rb") as f:
            data = f.read()
    data = re.sub(rb"\s*<encoding-date>[^<]*</encoding-date>", b"", data)
    return re.sub(rb'(<(?:score-)?part id=)"P[0-9a-f]+"', rb'\1"P1"', data)  # not random
