"""Songs to Standard MIDI File bytes: what ``render`` and ``compose`` write for a DAW.

A quarter note is one beat = PPQ ticks; every allowed length (triplets included) is a whole
number of ticks, so rendering is exact. Reading MIDI files back is transcribe.py's.
"""

from __future__ import annotations

import difflib
import struct
from fractions import Fraction

from melodygen.errors import BadInput
from melodygen.notation import Song
from melodygen.theory import KEYS

SUFFIXES = (".mid", ".midi")  # what melodygen reads and writes as MIDI
PPQ = 480  # ticks per quarter note; divisible by 32 so a double-dotted 32nd is whole ticks
DEFAULT_TEMPO = 120.0  # quarter notes per minute
DEFAULT_TIME = (4, 4)
DEFAULT_PROGRAM = 0  # General MIDI Acoustic Grand Piano
VELOCITY = 100
CHANNEL = 0


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
    """One melody track: tempo, time and key signature, program, then each note closed before
    the next; a tie holds a note on into the next one of the same pitch, as one sounding note
    (a tie into another pitch or a rest holds nothing). The bytes are those mido writes for
    these messages (a type 0 file, running status), written directly: composing 100 tunes
    spent more time building mido's checked messages than composing them (tests compare)."""
    bpm = tempo or song.tempo or DEFAULT_TEMPO
    numerator, denominator = song.time or DEFAULT_TIME
    program = song.program if program is None else program
    micros = round(60 * 1e6 / bpm * 4 / 4.0)  # per quarter note, as mido.bpm2tempo
    if not 0 <= micros <= 0xFFFFFF:  # what mido says of a tempo below 3.58 per minute
        raise ValueError("attribute must be in range 0..16777215")
    track = _Track()
    if song.title:
        track.meta(0x03, song.title.encode("utf-8"))  # track_name
    track.meta(0x51, micros.to_bytes(3, "big"))  # set_tempo
    # time_signature: the denominator as a power of 2, 24 MIDI clocks per click, 8 32nds a beat
    track.meta(0x58, bytes([numerator, denominator.bit_length() - 1, 24, 8]))
    if song.key:  # key_signature: sharps (flats below 0) as a signed byte, 1 for minor
        track.meta(0x59, bytes([KEYS[song.key] & 0xFF, int(song.key[0].islower())]))
    track.event(0, 0xC0 | CHANNEL, program or DEFAULT_PROGRAM)  # program_change
    delta = 0  # ticks since the last event: rests accumulate here
    sounding: list[int] = []  # [pitch, ticks] of the note being held
    held = False  # the previous note was tied
    for note in song.notes:
        ticks = _ticks(note.length, ppq)
        if sounding and held and note.midi_pitch == sounding[0]:
            sounding[1] += ticks
        else:
            if sounding:
                track.note(*sounding, delta)
                delta = 0
            sounding = [] if note.is_rest else [note.midi_pitch, ticks]  # type: ignore[list-item]
            delta += ticks if note.is_rest else 0
        held = note.tie
    if sounding:
        track.note(*sounding, delta)
        delta = 0
    track.meta(0x2F, b"", delta)  # end_of_track
    header = b"MThd" + struct.pack(">Lhhh", 6, 0, 1, ppq)  # format 0, one track
    return header + b"MTrk" + struct.pack(">L", len(track.data)) + bytes(track.data)


def _ticks(length: Fraction, ppq: int) -> int:
    """round(length * ppq), half to even as Fraction rounds, in integers."""
    ticks, rest = divmod(length.numerator * ppq, length.denominator)
    twice = 2 * rest
    return ticks + (twice > length.denominator or (twice == length.denominator and ticks % 2))


class _Track:
    """A track's event bytes: each a variable-length delta time, then the event; a channel
    event drops a status byte equal to the one before (running status), as mido writes it."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.status: int | None = None

    def _delta(self, ticks: int) -> None:
        out = [ticks & 0x7F]
        ticks >>= 7
        while ticks:
            out.append(0x80 | (ticks & 0x7F))
            ticks >>= 7
        self.data += bytes(reversed(out))

    def meta(self, kind: int, data: bytes, delta: int = 0) -> None:
        self._delta(delta)
        self.data += bytes([0xFF, kind])
        self._delta(len(data))  # a meta event's length is written as a delta time is
        self.data += data
        self.status = None

    def event(self, delta: int, status: int, *data: int) -> None:
        self._delta(delta)
        if status != self.status:
            self.data.append(status)
        self.data += bytes(data)
        self.status = status

    def note(self, pitch: int, ticks: int, delta: int) -> None:
        self.event(delta, 0x90 | CHANNEL, pitch, VELOCITY)  # note_on
        self.event(ticks, 0x80 | CHANNEL, pitch, 0)  # note_off
