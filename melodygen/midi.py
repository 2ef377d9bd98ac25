"""Songs to Standard MIDI File bytes and back.

A quarter note is one beat = PPQ ticks; every allowed length is a whole number of ticks, so
rendering is exact. Importing snaps to the nearest thirty-second note.
"""

from __future__ import annotations

import contextlib
import difflib
import io
from dataclasses import dataclass

import mido

from melodygen.errors import BadInput
from melodygen.notation import (
    DOT_FACTORS,
    DURATIONS,
    LETTER_SEMITONES,
    LETTERS,
    Note,
    Song,
    header_value,
)

SUFFIXES = (".mid", ".midi")  # what melodygen reads and writes as MIDI
PPQ = 480  # ticks per quarter note; divisible by 32 so a double-dotted 32nd is whole ticks
DEFAULT_TEMPO = 120.0  # quarter notes per minute
DEFAULT_TIME = (4, 4)
DEFAULT_PROGRAM = 0  # General MIDI Acoustic Grand Piano
VELOCITY = 100
CHANNEL = 0
DRUM_CHANNEL = 9  # General MIDI percussion: never a melody
CHARSET = "utf-8"  # for text such as the title; files from elsewhere may be latin-1
MAX_BEATS = 100_000  # longer is no melody but a broken or hostile file: refuse, don't allocate
GRID = 8  # import snaps to 1/GRID of a beat: a thirty-second note

# Lengths one token can have, longest first: (thirty-second notes, duration, dots)
_TOKEN_LENGTHS = sorted(
    (
        (int(GRID * 4 / d * f), d, dots)
        for d in DURATIONS
        for dots, f in enumerate(DOT_FACTORS)
        if (GRID * 4 / d * f).is_integer()
    ),
    reverse=True,
)
# Default spelling of the black keys (pitch class -> letter, alter): C# Eb F# Ab Bb
_DEFAULT_BLACK = {1: ("c", 1), 3: ("e", -1), 6: ("f", 1), 8: ("a", -1), 10: ("b", -1)}


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


def song_to_midi(
    song: Song, tempo: float | None = None, program: int | None = None, ppq: int = PPQ
) -> bytes:
    """One melody track: tempo, time signature, program, then each note closed before the next."""
    bpm = tempo or song.tempo or DEFAULT_TEMPO
    numerator, denominator = song.time or DEFAULT_TIME
    program = song.program if program is None else program
    track = mido.MidiTrack()
    if song.title:
        track.append(mido.MetaMessage("track_name", name=song.title))
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))
    track.append(mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator))
    track.append(
        mido.Message("program_change", program=program or DEFAULT_PROGRAM, channel=CHANNEL)
    )
    delta = 0  # ticks since the last event: rests accumulate here
    for note in song.notes:
        ticks = round(note.beats * ppq)
        if note.is_rest:
            delta += ticks
            continue
        track.append(
            mido.Message(
                "note_on", note=note.midi_pitch, velocity=VELOCITY, channel=CHANNEL, time=delta
            )
        )
        track.append(
            mido.Message("note_off", note=note.midi_pitch, velocity=0, channel=CHANNEL, time=ticks)
        )
        delta = 0
    track.append(mido.MetaMessage("end_of_track", time=delta))
    midi = mido.MidiFile(type=0, ticks_per_beat=ppq, charset=CHARSET)
    midi.tracks.append(track)
    out = io.BytesIO()
    midi.save(file=out)
    return out.getvalue()


@dataclass(frozen=True)
class _Sounding:
    start: int  # in grid units (thirty-seconds of a beat)
    end: int
    pitch: int


def _read(data: bytes, source: str) -> mido.MidiFile:
    if not data:
        raise BadInput(f"{source}: empty file, not a MIDI file")
    try:
        try:
            return mido.MidiFile(file=io.BytesIO(data), charset=CHARSET)
        except UnicodeDecodeError:
            return mido.MidiFile(file=io.BytesIO(data), charset="latin-1")
    except Exception as e:  # mido raises OSError, EOFError, KeyError, ValueError... on bad bytes
        raise BadInput(f"{source}: not a readable MIDI file ({e or type(e).__name__})") from None


def _keep(header: dict, key: str, value: str) -> None:
    """The first value the notation allows for ``key``; others (tempo 0, time 3/5) are dropped."""
    if key not in header and value:
        with contextlib.suppress(ValueError):
            header[key] = header_value(key, value)


def _notes_and_meta(midi: mido.MidiFile, source: str) -> tuple[list[_Sounding], dict, int]:
    """Every melodic note with its snapped start and end, the header, and the end of the song."""
    if midi.type == 2:
        raise BadInput(f"{source}: type 2 MIDI files (independent patterns) are not supported")
    if midi.ticks_per_beat <= 0:
        raise BadInput(f"{source}: SMPTE time division is not supported")
    unit = midi.ticks_per_beat / GRID  # ticks per thirty-second note

    def snap(tick: int) -> int:
        return int(tick / unit + 0.5)

    notes: list[_Sounding] = []
    header: dict = {}
    song_end = 0
    for number, track in enumerate(midi.tracks):
        now = 0
        open_notes: dict[tuple[int, int], list[int]] = {}  # (channel, pitch) -> start ticks
        for msg in track:
            now += msg.time
            if msg.is_meta:
                if msg.type == "set_tempo" and msg.tempo > 0:
                    _keep(header, "tempo", f"{mido.tempo2bpm(msg.tempo):.2f}")
                elif msg.type == "time_signature":
                    _keep(header, "time", f"{msg.numerator}/{msg.denominator}")
                elif msg.type == "track_name" and number == 0:
                    _keep(header, "title", " ".join(msg.name.split())[:200])
                continue
            if getattr(msg, "channel", None) == DRUM_CHANNEL:
                continue
            if msg.type == "program_change":
                header.setdefault("program", msg.program)
            elif msg.type == "note_on" and msg.velocity > 0:
                open_notes.setdefault((msg.channel, msg.note), []).append(now)
            elif msg.type in ("note_on", "note_off") and open_notes.get((msg.channel, msg.note)):
                start = open_notes[(msg.channel, msg.note)].pop(0)
                begin = snap(start)
                notes.append(_Sounding(begin, max(snap(now), begin + 1), msg.note))
        for (_, pitch), starts in open_notes.items():  # never closed: end at the track's end
            notes.extend(_Sounding(snap(s), max(snap(now), snap(s) + 1), pitch) for s in starts)
        song_end = max(song_end, snap(now))
    return notes, header, song_end


def _top_line(notes: list[_Sounding]) -> list[_Sounding]:
    """Keep the highest note at each onset, and drop notes that start under a higher sounding one.

    A kept note is cut short where the next kept note starts, so the result never overlaps.
    """
    line: list[_Sounding] = []
    for note in sorted(notes, key=lambda n: (n.start, -n.pitch)):
        if line and line[-1].start == note.start:
            continue  # a lower note of a chord
        if line and line[-1].end > note.start:
            if line[-1].pitch > note.pitch:
                continue  # under a higher note that is still sounding
            last = line[-1]
            line[-1] = _Sounding(last.start, note.start, last.pitch)
        line.append(note)
    return line


def _spelling(pitch_classes: set[int]) -> dict[int, tuple[str, int]]:
    """Spell each black key as a sharp or a flat so the piece uses each letter once where it can.

    F# in G major (F natural unused, G used), B- in F major (A used, B unused); otherwise the
    usual C# E- F# A- B-.
    """
    spelling = {pc: (LETTERS[LETTER_SEMITONES.index(pc)], 0) for pc in LETTER_SEMITONES}
    for pc, default in _DEFAULT_BLACK.items():
        below, above = (pc - 1) in pitch_classes, (pc + 1) % 12 in pitch_classes
        sharp = (LETTERS[LETTER_SEMITONES.index(pc - 1)], 1)
        flat = (LETTERS[LETTER_SEMITONES.index((pc + 1) % 12)], -1)
        spelling[pc] = flat if below and not above else sharp if above and not below else default
    return spelling


def _split(units: int) -> list[tuple[int, int]]:
    """(duration, dots) of the fewest tokens adding up to ``units`` thirty-seconds."""
    parts = []
    for length, duration, dots in _TOKEN_LENGTHS:
        while units >= length:
            parts.append((duration, dots))
            units -= length
    return parts


def midi_to_song(data: bytes, source: str = "<bytes>", name: str = "song") -> Song:
    """Read a MIDI file's melody (the top line if it is polyphonic) back into notation."""
    midi = _read(data, source)
    sounding, header, song_end = _notes_and_meta(midi, source)
    if not sounding:
        raise BadInput(f"{source}: no notes to import")
    if song_end > MAX_BEATS * GRID:
        raise BadInput(f"{source}: lasts over {MAX_BEATS} beats: too long to import")
    line = _top_line(sounding)
    spelling = _spelling({n.pitch % 12 for n in line})
    notes: list[Note] = []
    cursor = 0
    for n in line:
        notes += [Note(None, d, dots) for d, dots in _split(n.start - cursor)]
        letter, alter = spelling[n.pitch % 12]
        octave = (n.pitch - LETTER_SEMITONES[LETTERS.index(letter)] - alter) // 12 - 1
        # A note longer than one token can hold sounds for the longest that fits, then rests.
        (duration, dots), *rest = _split(n.end - n.start)
        notes.append(Note(letter, duration, dots, octave, alter))
        notes += [Note(None, d, k) for d, k in rest]
        cursor = n.end
    notes += [Note(None, d, dots) for d, dots in _split(song_end - cursor)]
    return Song(notes=tuple(notes), name=name, source=source, **header)
