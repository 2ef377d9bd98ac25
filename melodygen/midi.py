"""Songs to Standard MIDI File bytes and back.

A quarter note is one beat = PPQ ticks; every allowed length (triplets included) is a whole
number of ticks, so rendering is exact. Importing reads what DAWs, notation programs and the web
write: it picks the melody's part, snaps onsets to a grid chosen per file, takes the highest note
at each onset, keeps legato and played lines whole, and spells black keys from the key.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import mido
import numpy as np

from melodygen.errors import BadInput
from melodygen.notation import (
    KEYS,
    REST,
    Note,
    Song,
    header_value,
    key_on,
    one_line,
    spell,
    write_length,
)

SUFFIXES = (".mid", ".midi")  # what melodygen reads and writes as MIDI
PPQ = 480  # ticks per quarter note; divisible by 32 so a double-dotted 32nd is whole ticks
DEFAULT_TEMPO = 120.0  # quarter notes per minute
DEFAULT_TIME = (4, 4)
DEFAULT_PROGRAM = 0  # General MIDI Acoustic Grand Piano
VELOCITY = 100
CHANNEL = 0
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


# General MIDI's 128 program names, in program order (as pretty_midi's constants list them;
# importing pretty_midi for them would cost compose over half a second).
GM_PROGRAMS = (
    "Acoustic Grand Piano",
    "Bright Acoustic Piano",
    "Electric Grand Piano",
    "Honky-tonk Piano",
    "Electric Piano 1",
    "Electric Piano 2",
    "Harpsichord",
    "Clavinet",
    "Celesta",
    "Glockenspiel",
    "Music Box",
    "Vibraphone",
    "Marimba",
    "Xylophone",
    "Tubular Bells",
    "Dulcimer",
    "Drawbar Organ",
    "Percussive Organ",
    "Rock Organ",
    "Church Organ",
    "Reed Organ",
    "Accordion",
    "Harmonica",
    "Tango Accordion",
    "Acoustic Guitar (nylon)",
    "Acoustic Guitar (steel)",
    "Electric Guitar (jazz)",
    "Electric Guitar (clean)",
    "Electric Guitar (muted)",
    "Overdriven Guitar",
    "Distortion Guitar",
    "Guitar Harmonics",
    "Acoustic Bass",
    "Electric Bass (finger)",
    "Electric Bass (pick)",
    "Fretless Bass",
    "Slap Bass 1",
    "Slap Bass 2",
    "Synth Bass 1",
    "Synth Bass 2",
    "Violin",
    "Viola",
    "Cello",
    "Contrabass",
    "Tremolo Strings",
    "Pizzicato Strings",
    "Orchestral Harp",
    "Timpani",
    "String Ensemble 1",
    "String Ensemble 2",
    "Synth Strings 1",
    "Synth Strings 2",
    "Choir Aahs",
    "Voice Oohs",
    "Synth Choir",
    "Orchestra Hit",
    "Trumpet",
    "Trombone",
    "Tuba",
    "Muted Trumpet",
    "French Horn",
    "Brass Section",
    "Synth Brass 1",
    "Synth Brass 2",
    "Soprano Sax",
    "Alto Sax",
    "Tenor Sax",
    "Baritone Sax",
    "Oboe",
    "English Horn",
    "Bassoon",
    "Clarinet",
    "Piccolo",
    "Flute",
    "Recorder",
    "Pan Flute",
    "Blown bottle",
    "Shakuhachi",
    "Whistle",
    "Ocarina",
    "Lead 1 (square)",
    "Lead 2 (sawtooth)",
    "Lead 3 (calliope)",
    "Lead 4 chiff",
    "Lead 5 (charang)",
    "Lead 6 (voice)",
    "Lead 7 (fifths)",
    "Lead 8 (bass + lead)",
    "Pad 1 (new age)",
    "Pad 2 (warm)",
    "Pad 3 (polysynth)",
    "Pad 4 (choir)",
    "Pad 5 (bowed)",
    "Pad 6 (metallic)",
    "Pad 7 (halo)",
    "Pad 8 (sweep)",
    "FX 1 (rain)",
    "FX 2 (soundtrack)",
    "FX 3 (crystal)",
    "FX 4 (atmosphere)",
    "FX 5 (brightness)",
    "FX 6 (goblins)",
    "FX 7 (echoes)",
    "FX 8 (sci-fi)",
    "Sitar",
    "Banjo",
    "Shamisen",
    "Koto",
    "Kalimba",
    "Bagpipe",
    "Fiddle",
    "Shanai",
    "Tinkle Bell",
    "Agogo",
    "Steel Drums",
    "Woodblock",
    "Taiko Drum",
    "Melodic Tom",
    "Synth Drum",
    "Reverse Cymbal",
    "Guitar Fret Noise",
    "Breath Noise",
    "Seashore",
    "Bird Tweet",
    "Telephone Ring",
    "Helicopter",
    "Applause",
    "Gunshot",
)


def program_number(text: str) -> int:
    """A General MIDI program from its number (0-127) or its name, whole or a unique part of it,
    in any case: ``73``, ``flute``, ``"acoustic grand"``."""
    text = text.strip()
    if text.isdecimal():
        if int(text) < 128:
            return int(text)
        raise BadInput(f"program must be 0-127 or a General MIDI name, not {text}", "program")
    wanted = " ".join(text.lower().replace("_", " ").replace("-", " ").split())
    names = [" ".join(n.lower().replace("-", " ").split()) for n in GM_PROGRAMS]
    if wanted in names:
        return names.index(wanted)
    matches = [i for i, name in enumerate(names) if wanted and wanted in name]
    if len(matches) == 1:
        return matches[0]
    if matches:
        listed = ", ".join(GM_PROGRAMS[i].lower() for i in matches[:8])
        raise BadInput(f"{text!r} could be any of: {listed}", "program")
    close = difflib.get_close_matches(wanted, names, n=3, cutoff=0.5)
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    raise BadInput(f"{text!r} is not a General MIDI program name{hint}", "program")


def _mido_key(key: str) -> str:
    """A key of the notation as a MIDI key signature names it: B- is Bb, f# is F#m."""
    return key[0].upper() + key[1:].replace("-", "b") + ("m" if key[0].islower() else "")


def _notation_key(name: str) -> str | None:
    m = re.fullmatch(r"([A-G])([#b]?)(m?)", name)
    if not m:
        return None
    key = (m[1].lower() if m[3] else m[1]) + m[2].replace("b", "-")
    return key if key in KEYS else None


def song_to_midi(
    song: Song, tempo: float | None = None, program: int | None = None, ppq: int = PPQ
) -> bytes:
    """One melody track: tempo, time and key signature, program, then each note closed before
    the next; a tie holds a note on into the next one of the same pitch, as one sounding note
    (a tie into another pitch or a rest holds nothing)."""
    bpm = tempo or song.tempo or DEFAULT_TEMPO
    numerator, denominator = song.time or DEFAULT_TIME
    program = song.program if program is None else program
    track = mido.MidiTrack()
    if song.title:
        track.append(mido.MetaMessage("track_name", name=song.title))
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))
    track.append(mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator))
    if song.key:
        track.append(mido.MetaMessage("key_signature", key=_mido_key(song.key)))
    track.append(
        mido.Message("program_change", program=program or DEFAULT_PROGRAM, channel=CHANNEL)
    )
    delta = 0  # ticks since the last event: rests accumulate here
    sounding: list[int] = []  # [pitch, ticks] of the note being held
    held = False  # the previous note was tied
    for note in song.notes:
        ticks = round(note.length * ppq)
        if sounding and held and note.midi_pitch == sounding[0]:
            sounding[1] += ticks
        else:
            if sounding:
                track += _note_events(*sounding, delta)
                delta = 0
            sounding = [] if note.is_rest else [note.midi_pitch, ticks]
            delta += ticks if note.is_rest else 0
        held = note.tie
    if sounding:
        track += _note_events(*sounding, delta)
        delta = 0
    track.append(mido.MetaMessage("end_of_track", time=delta))
    midi = mido.MidiFile(type=0, ticks_per_beat=ppq, charset="utf-8")
    midi.tracks.append(track)
    out = io.BytesIO()
    midi.save(file=out)
    return out.getvalue()


def _note_events(pitch: int, ticks: int, delta: int) -> list[mido.Message]:
    return [
        mido.Message("note_on", note=pitch, velocity=VELOCITY, channel=CHANNEL, time=delta),
        mido.Message("note_off", note=pitch, velocity=0, channel=CHANNEL, time=ticks),
    ]


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


_KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def key_of(sounds: Iterable[tuple[int, float]]) -> str | None:
    """The key of a melody's (pitch, length) sounds: the one whose Krumhansl-Kessler profile
    correlates best with the time spent on each pitch class (the Krumhansl-Schmuckler
    algorithm), named as key_on names it; None without sounds."""
    weights = np.zeros(12)
    for pitch, length in sounds:
        weights[pitch % 12] += float(length)
    if not weights.any():
        return None
    scores = [
        (float(np.corrcoef(weights, np.roll(profile, tonic))[0, 1]), tonic, minor)
        for minor, profile in ((False, _KK_MAJOR), (True, _KK_MINOR))
        for tonic in range(12)
    ]
    _, tonic, minor = max(scores, key=lambda s: np.nan_to_num(s[0], nan=-2))
    return key_on(tonic, minor)


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
        tokens += write_length(spell(pitch, key), Fraction(end - start, steps))
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


def midi_to_song(data: bytes, source: str = "<bytes>", name: str = "song") -> Song:
    """A MIDI file's melody, as ``import`` reads it with its defaults."""
    return import_midi(data, source, name).song
