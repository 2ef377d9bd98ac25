"""Songs as scores: MusicXML through music21 (`pip install "melodygen[corpus]"`), which a
notation program (MuseScore) or an engraver (Verovio) opens.

music21 already knows how a musician writes a line: it splits notes at bar lines and ties them,
beams eighths within the beat, groups triplets and writes pickups as measure 0
(``makeNotation``), so melodygen builds a music21 part note for note and lets it notate.
music21 is imported only here, when a score is asked for.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path

from melodygen.encoding import Start, meter_of
from melodygen.errors import BadInput
from melodygen.notation import Note, Song

SUFFIXES = (".musicxml", ".mxl", ".abc", ".svg", ".score.png")  # what files() writes
RED = "#FF0000"  # wrong notes, as the chapter boxed them
_PAD = "melodygen-pickup"  # the rest that fills a pickup bar while music21 notates it


def _music21():
    try:
        import music21
    except ImportError:
        raise BadInput(
            'writing a score needs music21: pip install "melodygen[score]"', "out"
        ) from None
    return music21


def to_score(song: Song, wrong: Mapping[int, str] | None = None):
    """A music21 Score of the song: its title, tempo, meter and key, then its notes and rests as
    written (pitch spelled as the song spells it), notated by music21 (bars, ties, beams), the
    first bar a pickup where the notes fit bar lines after the start best (encoding.Start).
    ``wrong``: notes (by index) drawn red, each with a text (the true note) to write above it."""
    m21 = _music21()
    part = m21.stream.Part()  # its instrument: the MIDI file's, which a notation program plays,
    instrument = m21.instrument.instrumentFromMidiProgram(song.program or 0)
    instrument.partName = instrument.partAbbreviation = ""  # a lone melody's: not named
    part.insert(0, instrument)
    meter = meter_of(song)
    part.append(m21.meter.TimeSignature(f"{meter[0]}/{meter[1]}"))
    if song.key:  # "G", "f#" (minor), "B-": music21's own spelling
        part.append(m21.key.Key(song.key))
    if song.tempo:
        part.append(m21.tempo.MetronomeMark(number=song.tempo))
    pickup = pickup_of(song)
    pad = Fraction(4 * meter[0], meter[1]) - pickup  # exact, as music21's offsets are
    if pickup:  # notated as a full bar, its silent start taken out below
        part.append(m21.note.Rest(quarterLength=pad, id=_PAD))
    tied = False  # the note before was tied into this one
    for i, note in enumerate(song.notes):
        element = _element(m21, note)
        ties = (
            note.tie and i + 1 < len(song.notes) and song.notes[i + 1].midi_pitch == note.midi_pitch
        )
        if not note.is_rest and (ties or tied):  # a tie holds one pitch: into another, none
            kind = "continue" if ties and tied else "start" if ties else "stop"
            element.tie = m21.tie.Tie(kind)
        tied = ties and not note.is_rest
        if wrong and i in wrong:  # a lyric: Verovio spaces the notes so that the names fit
            element.style.color = RED
            element.lyrics.append(m21.note.Lyric(wrong[i]))
            element.lyrics[-1].style.color = RED
        part.append(element)
    part.makeNotation(inPlace=True)
    measures = list(part.getElementsByClass("Measure"))
    if pickup:
        first = measures[0]
        first.remove(first.getElementById(_PAD))
        for element in list(first):
            if element.offset >= pad:  # the notes and any text above them
                first.setElementOffset(element, element.offset - pad)
        first.paddingLeft = pad
    for number, measure in enumerate(measures, start=0 if pickup else 1):
        measure.number = number
    last = measures[-1]  # a last bar left short stays short:
    last.paddingRight = max(last.barDuration.quarterLength - last.duration.quarterLength, 0)
    score = m21.stream.Score([part])  # (without padding the writer fills it with rests)
    score.metadata = m21.metadata.Metadata(title=song.title or song.name or "")
    return score


def pickup_of(song: Song) -> Fraction:
    """Quarter notes before the first bar line (0: the song starts on one)."""
    return Fraction(Start.of(song).phase).limit_denominator(10**6)  # exact: phases are rounded


def _element(m21, note: Note):
    length = Fraction(note.length)
    if note.is_rest:
        return m21.note.Rest(quarterLength=length)
    pitch = m21.pitch.Pitch(step=note.letter.upper(), octave=note.octave)
    if note.alter:
        pitch.accidental = m21.pitch.Accidental(note.alter)
    return m21.note.Note(pitch, quarterLength=length)


def musicxml(song: Song, wrong: Mapping[int, str] | None = None) -> bytes:
    """The song as an uncompressed MusicXML file, the same bytes for the same song (music21's
    date of writing left out, its random part and instrument ids made "P1", "P1-I1")."""
    score = to_score(song, wrong)
    with tempfile.TemporaryDirectory(prefix="melodygen-score-") as tmp:
        path = score.write("musicxml", fp=os.path.join(tmp, "song.musicxml"))
        with open(path, "rb") as f:
            data = f.read()
    data = re.sub(rb"\s*<encoding-date>[^<]*</encoding-date>", b"", data)
    data = data.replace(b"<lyric ", b'<lyric placement="above" ')  # music21 has no placement
    data = re.sub(rb'"I[0-9a-f]{16,}"', b'"P1-I1"', data)  # the instrument's id, not random
    return re.sub(rb'(<(?:score-)?part id=)"P[0-9a-f]+"', rb'\1"P1"', data)  # nor the part's


def svg(song: Song, wrong: Mapping[int, str] | None = None) -> str:
    """The song engraved by Verovio (`pip install verovio`) from its MusicXML: one SVG, its
    pages (if more than one) stacked; the same song, the same text (ids from a checksum)."""
    try:
        import verovio
    except ImportError:
        raise BadInput(
            'an engraved score needs Verovio: pip install "melodygen[score]"', "out"
        ) from None
    toolkit = verovio.toolkit()
    toolkit.setOptions(VEROVIO_OPTIONS)
    if not toolkit.loadData(musicxml(song, wrong).decode()):
        raise BadInput(f"{song.name}: Verovio could not read its MusicXML", "out")
    pages = [toolkit.renderToSVG(page) for page in range(1, toolkit.getPageCount() + 1)]
    return pages[0] if len(pages) == 1 else _stacked(pages)


VEROVIO_OPTIONS = {
    "adjustPageHeight": True,  # a page as tall as its systems
    "pageHeight": 60000,  # Verovio's largest: a long song stays one page, mostly
    "footer": "none",  # no "Engraved by Verovio" under each tune
    "scale": 40,
    "lyricSize": 3.5,  # the true notes above wrong ones: smaller than sung words
    "lyricWordSpace": 3,
    "xmlIdChecksum": True,  # ids from the input, not random: the same bytes each time
}


def _stacked(pages: list[str]) -> str:
    """Several SVG pages as one, one below the other."""
    sizes = [tuple(float(v) for v in re.search(r'width="([\d.]+)px" height="([\d.]+)px"',
                                               page).groups()) for page in pages]  # fmt: skip
    width, height = max(w for w, _ in sizes), sum(h for _, h in sizes)
    parts, y = [], 0.0
    for page, (_, h) in zip(pages, sizes, strict=True):
        parts.append(re.sub(r"^<svg ", f'<svg y="{y:g}" ', page.strip(), count=1))
        y += h
    return (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'width="{width:g}px" height="{height:g}px">{"".join(parts)}</svg>')  # fmt: skip


def png(svg_text: str, scale: float = 2) -> bytes:
    """An SVG score as a PNG on white, ``scale`` pixels to the SVG's one (every score's staff
    the same size) (CairoSVG: `pip install cairosvg`, which needs the Cairo library)."""
    try:
        import cairosvg
    except (ImportError, OSError) as e:  # OSError: the Python package without libcairo
        raise BadInput(
            f"a PNG score needs CairoSVG and Cairo ({e}): pip install cairosvg", "out"
        ) from None
    plain = re.sub(  # CairoSVG ignores the SMuFL font Verovio embeds: a tempo's note in DejaVu
        r'<tspan font-family="Leipzig" font-size="(\d+)px">\ueca5</tspan>',
        lambda m: (
            f'<tspan font-family="DejaVu Sans" font-size="{int(m[1]) * 3 // 5}px">\u2669</tspan>'
        ),
        svg_text,
    )
    return cairosvg.svg2png(bytestring=plain.encode(), scale=scale,
                            background_color="white")  # fmt: skip


def files(song: Song, suffixes: Sequence[str], wrong: Mapping[int, str] | None = None) -> dict:
    """The song written in each format of SUFFIXES asked for: {suffix: bytes}; the SVG is
    engraved once for both .svg and .score.png."""
    out: dict[str, bytes] = {}
    engraved = svg(song, wrong) if {".svg", ".score.png"} & set(suffixes) else ""
    for suffix in suffixes:
        if suffix == ".musicxml":
            out[suffix] = musicxml(song, wrong)
        elif suffix == ".mxl":
            out[suffix] = mxl(song, wrong)
        elif suffix == ".abc":  # melodygen's own writer: music21 reads ABC, cannot write it
            from melodygen import abc

            out[suffix] = abc.abc(song).encode()
        elif suffix == ".svg":
            out[suffix] = engraved.encode()
        elif suffix == ".score.png":
            out[suffix] = png(engraved)
        else:
            raise ValueError(f"not a score format: {suffix}")
    return out


def suffix_of(path: Path) -> str:
    """A path's format: its suffix, or ".score.png" for an engraved score's PNG."""
    return ".score.png" if path.name.lower().endswith(".score.png") else path.suffix.lower()


_CONTAINER = b"""<?xml version="1.0" encoding="UTF-8"?>
<container><rootfiles><rootfile full-path="score.musicxml"
 media-type="application/vnd.recordare.musicxml+xml"/></rootfiles></container>
"""


def mxl(song: Song, wrong: Mapping[int, str] | None = None) -> bytes:
    """Compressed MusicXML: the same file zipped with MusicXML's container, written here with
    fixed dates (music21's .mxl would carry the time of writing) so the bytes repeat."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data, method in (
            ("mimetype", b"application/vnd.recordare.musicxml", zipfile.ZIP_STORED),
            ("META-INF/container.xml", _CONTAINER, zipfile.ZIP_DEFLATED),
            ("score.musicxml", musicxml(song, wrong), zipfile.ZIP_DEFLATED),
        ):
            archive.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data, method)
    return buffer.getvalue()
