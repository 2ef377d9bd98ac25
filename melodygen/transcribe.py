"""Files to songs, as ``melodygen import`` reads them: the melody of a MIDI file as DAWs,
notation programs and the web write them, and of an ABC or MusicXML score through music21.

It picks the melody's part, snaps onsets to a grid chosen per file, takes the highest note at
each onset, keeps legato and played lines whole, and spells black keys from the key
(docs/cli.md lists the rules).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from melodygen import notation
from melodygen.errors import BadInput
from melodygen.files import read_bytes
from melodygen.notation import REST, Note, Song, header_value, one_line, write_length
from melodygen.theory import KEYS, key_of, spell

if TYPE_CHECKING:
    import mido

SCORE_SUFFIXES = (".abc", ".xml", ".musicxml", ".mxl")  # read through music21
DRUM_CHANNEL = 9  # General MIDI percussion: never a melody
MAX_BEATS = 100_000  # longer is no melody but a broken or hostile file: refuse, don't allocate
# Grids import can snap onsets to, in steps per beat, coarsest first: quarters, eighths,
# triplet eighths, sixteenths, triplet sixteenths, thirty-seconds, triplet thirty-seconds
# (each divides notation.LENGTH_UNITS, so any length on them has tokens).
GRIDS = (1, 2, 3, 4, 6, 8, 12)
GRID_FIT = 0.99  # a grid fits when this share of the onsets lies within the tolerance of it
TOLERANCE = 1 / 48  # of a beat: how far a played onset may be from the grid (10 ticks at 480)
HELD = Fraction(3, 4)  # a played note is held at least this share of its written length
LEGATO_GAP = Fraction(1, 4)  # a played note ending this share of its span early is held on
MELODY_WORDS = re.compile(r"melod|vocal|voice|lead|solo|sing|sopran|tune|theme|right", re.I)


def _notation_key(name: str) -> str | None:
    m = re.fullmatch(r"([A-G])([#b]?)(m?)", name)
    if not m:
        return None
    key = (m[1].lower() if m[3] else m[1]) + m[2].replace("b", "-")
    return key if key in KEYS else None


@dataclass
class _Part:
    """The notes one channel plays in one track: (start tick, end tick, pitch)."""

    track: int
    channel: int
    notes: list[tuple[int, int, int]] = field(default_factory=list)


@dataclass
class _File:
    """What import reads from a MIDI file before choosing anything."""

    ppq: int
    parts: dict[tuple[int, int], _Part]
    names: dict[int, str]  # track -> its name, cleaned
    tempos: dict[int, float]  # tick -> quarter notes per minute; the last event at a tick wins
    times: dict[int, tuple[int, int]]  # tick -> time signature, likewise
    keys: dict[int, str]  # tick -> key of the notation, from key signatures
    programs: dict[int, dict[int, int]]  # channel -> tick -> program, from any track
    drum_notes: int
    drum_parts: int
    end: int  # the last event's tick


def _read(data: bytes, source: str) -> mido.MidiFile:
    import mido  # imported by reading MIDI alone: composing, which writes it, never pays for it

    if not data:
        raise BadInput(f"{source}: empty file, not a MIDI file")
    try:  # Latin-1, the MIDI convention for text, reads any bytes; _text tries UTF-8 first
        midi = mido.MidiFile(file=io.BytesIO(data), charset="latin-1")
    except Exception as e:  # mido raises OSError, EOFError, KeyError, ValueError... on bad bytes
        why = str(e) or ("it ends early" if isinstance(e, EOFError) else type(e).__name__)
        raise BadInput(f"{source}: not a readable MIDI file ({why})") from None
    if midi.type == 2:
        raise BadInput(f"{source}: type 2 MIDI files (independent patterns) are not supported")
    if midi.ticks_per_beat <= 0:
        raise BadInput(f"{source}: SMPTE time division is not supported")
    return midi


def _text(name: str) -> str:
    """A name read as Latin-1: as UTF-8 if its bytes are that, one line without control
    characters (a NUL-terminated "Piano\\0" made an unreadable song)."""
    with contextlib.suppress(UnicodeError):
        name = name.encode("latin-1").decode("utf-8")
    return one_line(name)


def _scan(midi: mido.MidiFile) -> _File:
    import mido

    found = _File(midi.ticks_per_beat, {}, {}, {}, {}, {}, {}, 0, 0, 0)
    for number, track in enumerate(midi.tracks):
        now = 0
        open_notes: dict[tuple[int, int], list[int]] = {}  # (channel, pitch) -> start ticks
        for msg in track:
            now += msg.time
            if msg.type == "set_tempo" and msg.tempo > 0:
                found.tempos[now] = mido.tempo2bpm(msg.tempo)
            elif msg.type == "time_signature":
                found.times[now] = (msg.numerator, msg.denominator)
            elif msg.type == "key_signature" and (key := _notation_key(msg.key)):
                found.keys[now] = key
            elif msg.type == "track_name" and number not in found.names:
                found.names[number] = _text(msg.name)
            elif msg.type == "program_change":
                found.programs.setdefault(msg.channel, {})[now] = msg.program
            elif msg.type == "note_on" and msg.velocity > 0:
                open_notes.setdefault((msg.channel, msg.note), []).append(now)
            elif msg.type in ("note_on", "note_off") and open_notes.get((msg.channel, msg.note)):
                start = open_notes[(msg.channel, msg.note)].pop(0)
                found.parts.setdefault((number, msg.channel), _Part(number, msg.channel))
                found.parts[number, msg.channel].notes.append((start, now, msg.note))
        for (channel, pitch), starts in open_notes.items():  # never closed: end with the track
            part = found.parts.setdefault((number, channel), _Part(number, channel))
            part.notes += [(start, now, pitch) for start in starts]
        found.end = max(found.end, now)
    for key in [k for k in found.parts if k[1] == DRUM_CHANNEL]:
        found.drum_notes += len(found.parts.pop(key).notes)
        found.drum_parts += 1
    return found


def _label(found: _File, parts: Sequence[_Part]) -> str:
    track = parts[0].track
    name = found.names.get(track)
    label = f"track {track + 1}" + (f' "{name}"' if name else "")
    in_track = [p for p in found.parts.values() if p.track == track]
    if len(parts) == 1 and len(in_track) > 1:
        label += f" channel {parts[0].channel + 1}"
    return label


def _choose(found: _File, track: str | None, source: str) -> list[_Part]:
    """The melody's part: the track asked for (a number from 1, or part of its name), or the
    part that looks most like a melody: a track named so, else the highest of the parts that
    play at least a quarter as many notes as the busiest."""
    parts = list(found.parts.values())
    if not parts:
        what = "only drums, no melody" if found.drum_notes else "no notes"
        raise BadInput(f"{source}: {what} to import")
    tracks = sorted({p.track for p in parts})
    listed = ", ".join(_label(found, [p for p in parts if p.track == t]) for t in tracks)
    if track is not None:
        if track.strip().isdecimal():
            wanted = {int(track) - 1}
        else:
            wanted = {t for t in tracks if track.lower() in found.names.get(t, "").lower()}
        if len(wanted) != 1 or not wanted & set(tracks):
            why = "matches several tracks" if len(wanted) > 1 else "is no track with notes"
            raise BadInput(f"{track!r} {why} (tracks with notes: {listed})", "track")
        return [p for p in parts if p.track in wanted]
    busiest = max(len(p.notes) for p in parts)

    def score(part: _Part) -> tuple[bool, float]:
        named = bool(MELODY_WORDS.search(found.names.get(part.track, "")))
        tops: dict[int, int] = {}
        for start, _, pitch in part.notes:
            tops[start] = max(pitch, tops.get(start, 0))
        return named, float(np.mean(list(tops.values())))

    return [max((p for p in parts if 4 * len(p.notes) >= busiest), key=score)]


def _fit_grid(onsets: np.ndarray, ppq: int) -> int:
    """The coarsest grid (steps per beat) that holds the onsets within the tolerance; if none
    does (a free performance), the one that holds the most."""
    shares = []
    for steps in GRIDS:
        step = ppq / steps
        off = np.abs(onsets - np.round(onsets / step) * step)
        shares.append(float(np.mean(off <= TOLERANCE * ppq + 1e-9)))
        if shares[-1] >= GRID_FIT:
            return steps
    return GRIDS[int(np.argmax(shares))]


def _melody(notes: Sequence[tuple[int, int, int]], ppq: int, steps: int):
    """(onset, end, pitch) in grid steps: the highest note at each onset, sounding until the
    next one starts. A played note released a little early (a gap under a grid step, or under
    a quarter of its span when its end is off the grid) is held to the next onset; a gap
    written on the grid stays a rest; a played note before a rest ends where it was written
    to (``_written_end``)."""
    step = Fraction(ppq, steps)
    tolerance = TOLERANCE * ppq

    def snap(tick: int) -> int:
        return round(tick / step)

    top: dict[int, tuple[int, int]] = {}  # onset -> (pitch, end tick)
    for start, end, pitch in notes:
        k = snap(start)
        top[k] = max(top.get(k, (-1, 0)), (pitch, end))
    onsets = sorted(top)
    line = []
    for k, following in zip(onsets, [*onsets[1:], None], strict=True):
        pitch, end = top[k]
        on_grid = abs(end - snap(end) * step) <= tolerance
        if following is not None:
            gap = following * step - end
            if gap < step or (not on_grid and gap <= (following - k) * step * LEGATO_GAP):
                line.append((k, following, pitch))
                continue
        if on_grid:
            written = max(k + 1, snap(end))
        else:
            written = _written_end(k, end / step, following, steps)
        line.append((k, written if following is None else min(written, following), pitch))
    return line


def _written_end(onset: int, end: Fraction, limit: int | None, steps: int) -> int:
    """The grid point a note played from ``onset`` to ``end`` (in grid steps) was written to
    end at: the coarsest (a bar of four beats, two beats, a beat, then finer) between where
    it was released and where it would be if held for HELD of its written length."""
    low = max(onset + 1, -(-(end - Fraction(TOLERANCE) * steps) // 1))
    high = onset + (end - onset) / HELD
    if limit is not None:
        high = min(high, limit)
    sizes = [4 * steps, 2 * steps] + [d for d in range(steps, 0, -1) if steps % d == 0]
    for size in sizes:
        point = -(-low // size) * size
        if point <= high:
            return int(point)
    return max(onset + 1, round(end))


def _in_effect(events: dict[int, object], tick: int):
    """The value of the last event at or before ``tick`` (the first event if all are later)."""
    ticks = sorted(events)
    before = [t for t in ticks if t <= tick]
    return events[before[-1] if before else ticks[0]] if ticks else None


def _header(found: _File) -> tuple[dict, list[str]]:
    """Tempo, meter and key as the song's header: those in effect where the body starts (after
    a pickup bar: a first bar shorter than the meter that follows it), and the changes later in
    the piece that one header cannot hold."""
    ppq, body, notes = found.ppq, 0, []
    times = sorted(found.times.items())
    if len(times) > 1 and times[0][0] == 0:
        (_, (n0, d0)), (t1, (n1, d1)) = times[0], times[1]
        if t1 * d0 == ppq * 4 * n0 and n0 * d1 < n1 * d0:
            body = t1
            notes.append(f"a pickup of {Fraction(t1, ppq)} beat{'s' * (t1 != ppq)}")
    header: dict = {}
    for key, events, show in (
        ("tempo", found.tempos, lambda v: f"{v:.4g} bpm"),
        ("time", found.times, lambda v: f"{v[0]}/{v[1]}"),
        ("key", found.keys, str),
    ):
        value = _in_effect(events, body)
        if value is None:
            continue
        with contextlib.suppress(ValueError):  # tempo 0 or time 3/5 is no header: dropped
            text = f"{value:.2f}" if key == "tempo" else show(value)
            header[key] = header_value(key, text)
        current, later = value, []
        for tick in sorted(t for t in events if t > body):
            if events[tick] != current:
                current = events[tick]
                later.append(f"{show(current)} at beat {float(Fraction(tick, ppq)):g}")
        if later:
            what = {"tempo": "tempo change", "time": "meter change", "key": "key change"}[key]
            notes.append(
                f"{len(later)} {what}{'s' * (len(later) > 1)} not kept ({later[0]}"
                + (", ...)" if len(later) > 1 else ")")
            )
    return header, notes


@dataclass(frozen=True)
class Imported:
    """A song read from a file, and what was left out on the way, for one summary line."""

    song: Song
    part: str  # where the melody came from: 'track 2 "Flute"'
    track: int  # that part's track (from 0) and channels (from 0)
    channels: tuple[int, ...]
    asked: bool  # the part was named by --track
    parts: int  # parts with notes (drums not counted)
    melody_parts: int  # of them, those the melody was taken from
    drum_parts: int
    drum_notes: int
    other_notes: int  # in parts other than the melody's
    under_notes: int  # in the melody's part, under it (chords, inner voices) or merged by the grid
    kept: int  # sounding melody notes
    grid: int  # steps per beat
    key_from: str  # "key signature" or "estimated"
    notes: tuple[str, ...] = ()  # pickup, tempo and meter changes not kept

    def summary(self) -> str:
        dropped = [
            f"{n} {what}"
            for n, what in (
                (self.under_notes, "under the melody"),
                (self.other_notes, "in other parts"),
                (self.drum_notes, "drums"),
            )
            if n
        ]
        total = self.kept + self.under_notes + self.other_notes + self.drum_notes
        how = (
            "asked for" if self.asked
            else "the only part" if self.parts == 1
            else f"the most melody-like of {self.parts} parts"
        )  # fmt: skip
        others = self.parts - self.melody_parts
        left = [
            f"{n} {what}{'s' * (n > 1)}"
            for n, what in ((others, "other part"), (self.drum_parts, "drum part"))
            if n
        ]
        how += f"; left out {', '.join(left)}" if left else ""
        line = (
            f"melody from {self.part} ({how}); kept {self.kept} of {total} notes"
            + (f" (dropped {', '.join(dropped)})" if dropped else "")
            + f"; grid {GRID_NAMES[self.grid]}; key {self.song.key} ({self.key_from})"
        )
        return "; ".join([line, *self.notes])


GRID_NAMES = {1: "1/4", 2: "1/8", 3: "1/8 triplets", 4: "1/16", 6: "1/16 triplets", 8: "1/32",
              12: "1/32 triplets"}  # fmt: skip
GRID_VALUES = {4 * steps: steps for steps in GRIDS}  # --grid 16: sixteenths, 12: triplet eighths


def import_midi(
    data: bytes,
    source: str = "<bytes>",
    name: str = "song",
    track: str | None = None,
    grid: int | None = None,
) -> Imported:
    """A MIDI file's melody as a song: the melody's part (``track``, or the most melody-like),
    onsets on ``grid`` steps per beat (or the coarsest that fits), the highest note at each
    onset, tempo and meter from the body, the key from a key signature or the notes."""
    found = _scan(_read(data, source))
    parts = _choose(found, track, source)
    ppq = found.ppq
    if max(found.end, max(end for p in parts for _, end, _ in p.notes)) > MAX_BEATS * ppq:
        raise BadInput(f"{source}: lasts over {MAX_BEATS} beats: too long to import")
    notes = sorted(n for p in parts for n in p.notes)
    steps = grid or _fit_grid(np.array([start for start, _, _ in notes], float), ppq)
    line = _melody(notes, ppq, steps)
    header, remarks = _header(found)
    key_from = "key signature" if "key" in header else "estimated"
    key = header.pop("key", None) or key_of((pitch, end - start) for start, end, pitch in line)
    tokens: list[Note] = []
    cursor = 0
    for start, end, pitch in line:
        tokens += write_length(REST, Fraction(start - cursor, steps))
        letter, alter, octave = spell(pitch, key)
        note = Note(letter, octave=octave, alter=alter)
        tokens += write_length(note, Fraction(end - start, steps))
        cursor = end
    step = Fraction(ppq, steps)
    if abs(found.end - round(found.end / step) * step) <= TOLERANCE * ppq:  # a written end
        tokens += write_length(REST, Fraction(max(round(found.end / step) - cursor, 0), steps))
    # a program change holds for its channel whichever track it is in: the melody's sounds
    program = _in_effect(found.programs.get(parts[0].channel, {}), notes[0][0])
    title = found.names.get(0) or None
    song = Song(tuple(tokens), name=name, title=title, program=program, key=key, source=source,
                **header)  # fmt: skip
    in_parts = sum(len(p.notes) for p in parts)
    return Imported(
        song=song,
        part=_label(found, parts),
        track=parts[0].track,
        channels=tuple(sorted(p.channel for p in parts)),
        asked=track is not None,
        parts=len(found.parts),
        melody_parts=len(parts),
        drum_parts=found.drum_parts,
        drum_notes=found.drum_notes,
        other_notes=sum(len(p.notes) for p in found.parts.values()) - in_parts,
        under_notes=in_parts - len(line),
        kept=len(line),
        grid=steps,
        key_from=key_from,
        notes=tuple(remarks),
    )


def import_file(path: Path, track: str | None = None, grid: int | None = None) -> Imported:
    """A MIDI file's melody; an ABC or MusicXML score's by way of the MIDI music21 writes of it
    (so the same melody rules apply), titled with the score's title."""
    if path.suffix.lower() not in SCORE_SUFFIXES:
        data = read_bytes(path, "MIDI file")
        return import_midi(data, str(path), path.stem, track, grid)
    data, title, length = _score_midi(path)
    imported = import_midi(data, str(path), path.stem, track, grid)
    notes = list(imported.song.notes)
    while notes and notes[-1].is_rest and sum(n.length for n in notes[:-1]) >= length:
        notes.pop()  # the silence music21 writes after a score's end
    song = dataclasses.replace(
        imported.song, notes=tuple(notes), title=title or imported.song.title
    )
    return dataclasses.replace(imported, song=song)


def _score_midi(path: Path) -> tuple[bytes, str | None, Fraction]:
    """An ABC or MusicXML file as MIDI bytes (its first tune when it holds several), its
    title, and its length in beats."""
    read_bytes(path, "score")  # the same errors as any other file that is missing or a folder
    try:
        from music21 import converter, stream
        from music21.midi import translate
    except ImportError:
        raise BadInput(
            f'{path}: reading ABC and MusicXML needs music21: pip install "melodygen[corpus]"'
        ) from None
    try:
        score = converter.parse(path, forceSource=True)
        if isinstance(score, stream.Opus):
            score = score.scores[0]
        title = score.metadata.title if score.metadata else None
        length = Fraction(score.highestTime)
        data = translate.streamToMidiFile(score).writestr()
    except Exception as e:  # music21 raises many kinds on files it cannot read
        reason = " ".join(str(e).split())[:120] or type(e).__name__
        raise BadInput(f"{path}: not a score music21 can read ({reason})") from None
    return data, notation.one_line(title) if title else None, length
