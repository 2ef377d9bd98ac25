"""MIDI out read back by an independent reader (pretty_midi), and MIDI in built with mido."""

from __future__ import annotations

import io
import re

import mido
import pretty_midi
import pytest

from conftest import CHAPTER_SEQ, NABIYA, SONGS
from melodygen import corpus
from melodygen.errors import MelodygenError
from melodygen.midi import PPQ, song_to_midi
from melodygen.notation import DENOMINATORS, Song, parse_song, read_song
from melodygen.theory import KEYS
from melodygen.transcribe import import_midi


def read_back(data: bytes) -> pretty_midi.PrettyMIDI:
    return pretty_midi.PrettyMIDI(io.BytesIO(data))


def ticks(pm: pretty_midi.PrettyMIDI) -> list[tuple[int, int, int]]:
    return [
        (pm.time_to_tick(n.start), pm.time_to_tick(n.end), n.pitch) for n in pm.instruments[0].notes
    ]


def test_nabiya_renders_54_notes_end_to_end():
    pm = read_back(song_to_midi(read_song(NABIYA)))
    assert pm.resolution == PPQ
    notes = ticks(pm)
    assert len(notes) == 54
    assert [p for _, _, p in notes[:6]] == [67, 64, 64, 65, 62, 62]  # G4 E4 E4 F4 D4 D4
    cursor = 0
    for (start, end, _), code in zip(notes, CHAPTER_SEQ, strict=True):
        assert start == cursor, "no gaps, no overlaps"
        assert end - start == {"4": PPQ, "8": PPQ // 2}[code[1]]
        cursor = end
    assert pm.time_signature_changes[0].numerator == 2
    assert pm.time_signature_changes[0].denominator == 4
    assert pm.get_tempo_changes()[1][0] == pytest.approx(120)


def test_header_tempo_program_and_overrides():
    song = parse_song("tempo: 90\nprogram: 73\ntitle: Flute\nc4 d8")
    pm = read_back(song_to_midi(song))
    assert pm.get_tempo_changes()[1][0] == pytest.approx(90, abs=1e-3)
    assert pm.instruments[0].program == 73
    assert pm.time_signature_changes[0].numerator == 4  # default 4/4
    pm = read_back(song_to_midi(song, tempo=60, program=0))
    assert pm.get_tempo_changes()[1][0] == pytest.approx(60)
    assert pm.instruments[0].program == 0
    assert pm.instruments[0].notes[0].end == pytest.approx(1.0)  # a quarter at 60 bpm is a second


def test_rests_are_silence_and_lengths_are_exact():
    song = parse_song("r8 c4. r4 d16 e32 r2 f1.. r4")
    pm = read_back(song_to_midi(song))
    q = PPQ
    assert ticks(pm) == [
        (q // 2, q // 2 + q * 3 // 2, 60),
        (q * 3, q * 3 + q // 4, 62),
        (q * 3 + q // 4, q * 3 + q // 4 + q // 8, 64),
        (q * 3 + q * 3 // 8 + 2 * q, q * 5 + q * 3 // 8 + q * 7, 65),
    ]
    # the trailing rest is kept as time before the end of the track
    midi = mido.MidiFile(file=io.BytesIO(song_to_midi(song)))
    assert sum(m.time for m in midi.tracks[0]) == round(sum(n.beats for n in song.notes) * q)


def test_every_note_is_closed():
    midi = mido.MidiFile(file=io.BytesIO(song_to_midi(read_song(SONGS / "minuet_in_g.txt"))))
    sounding = set()
    for msg in midi.tracks[0]:
        if msg.type == "note_on":
            assert msg.note not in sounding
            sounding.add(msg.note)
        elif msg.type == "note_off":
            sounding.remove(msg.note)
    assert not sounding


@pytest.mark.parametrize("path", sorted(SONGS.glob("*.txt")), ids=lambda p: p.stem)
def test_render_then_import_gives_the_same_song(path):
    song = read_song(path)
    again = import_midi(song_to_midi(song)).song
    assert again.tokens == song.tokens
    assert again.title == song.title
    assert again.time == (song.time or (4, 4))
    assert again.tempo == (song.tempo or 120)
    assert again.program == (song.program or 0)


def build_midi(notes, ppq=96, tempo=400000, note_off_as_zero_velocity=False, extra_tracks=()):
    """A type 1 file: (start tick, end tick, pitch) notes in one track, events sorted by time."""
    events = []
    for start, end, pitch in notes:
        events.append((start, 1, mido.Message("note_on", note=pitch, velocity=90)))
        off = (
            mido.Message("note_on", note=pitch, velocity=0)
            if note_off_as_zero_velocity
            else mido.Message("note_off", note=pitch)
        )
        events.append((end, 0, off))
    events.sort(key=lambda e: (e[0], e[1]))
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=tempo)])
    now = 0
    for time, _, msg in events:
        track.append(msg.copy(time=time - now))
        now = time
    midi = mido.MidiFile(type=1, ticks_per_beat=ppq)
    midi.tracks.append(track)
    midi.tracks.extend(extra_tracks)
    out = io.BytesIO()
    midi.save(file=out)
    return out.getvalue()


def test_import_any_ppq_and_tempo():
    # ppq 96, 150 bpm: quarter, eighth, dotted eighth, rest of a quarter, half
    data = build_midi([(0, 96, 67), (96, 144, 64), (144, 216, 65), (312, 504, 62)], tempo=400000)
    song = import_midi(data).song
    assert song.tokens == ["g4", "e8", "f8.", "r4", "d2"]
    assert song.tempo == 150


def test_import_snaps_to_the_nearest_thirty_second():
    # ppq 100: a 32nd is 12.5 ticks; humanised timings a few ticks off the grid
    data = build_midi(
        [(3, 98, 60), (102, 148, 62), (151, 203, 64)], ppq=100, note_off_as_zero_velocity=True
    )
    assert import_midi(data).song.tokens == ["c4", "d8", "e8"]


def test_notes_longer_than_a_token_are_tied_not_cut():
    # defect 5: 5/8 of a beat, 9 beats, 5 beats and 1.25 beats are held whole, as tied tokens
    lengths = [60, 9 * 96, 5 * 96, 120]
    starts = [sum(lengths[:i]) for i in range(len(lengths))]
    data = build_midi(
        [(s, s + n, 60 + 2 * i) for i, (s, n) in enumerate(zip(starts, lengths, strict=True))]
    )
    song = import_midi(data).song
    assert song.tokens == ["c8~", "c32", "d1..~", "d2", "e1~", "e4", "f#4~", "f#16"]
    pm = read_back(song_to_midi(song))
    assert [n.end - n.start for n in pm.instruments[0].notes] == pytest.approx(
        [n / 96 * 0.4 for n in lengths]  # 150 bpm: 0.4 s a beat
    )


def test_polyphony_keeps_the_highest_note_of_each_onset():
    # a C major chord; a melody over a held bass note (dropped: it starts with a higher one);
    # a low note starting under a long high one ends it: the melody is chosen per onset
    data = build_midi(
        [
            (0, 96, 60),
            (0, 96, 64),
            (0, 96, 67),
            (96, 480, 48),
            (96, 192, 72),
            (192, 288, 74),
            (480, 672, 79),
            (576, 672, 50),
            (672, 768, 50),
        ]
    )
    assert import_midi(data).song.tokens == ["g4", "c'4", "d'4", "r2", "g'4", "D4", "D4"]


def test_drums_are_ignored():
    drums = mido.MidiTrack(
        [
            mido.Message("note_on", note=36, velocity=100, channel=9),
            mido.Message("note_off", note=36, channel=9, time=96),
        ]
    )
    data = build_midi([(0, 96, 60)], extra_tracks=[drums])
    assert import_midi(data).song.tokens == ["c4"]


def test_import_spells_black_keys_by_context():
    f_major = build_midi([(i * 96, i * 96 + 96, p) for i, p in enumerate([65, 67, 69, 70, 72])])
    assert import_midi(f_major).song.tokens == ["f4", "g4", "a4", "b-4", "c'4"]
    g_major = build_midi([(i * 96, i * 96 + 96, p) for i, p in enumerate([67, 66, 67, 54])])
    assert import_midi(g_major).song.tokens == ["g4", "f#4", "g4", "F#4"]


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "empty file"),
        (b"MThd\x00\x00\x00\x06\x00\x01\x00\x01", "not a readable MIDI file ("),
        (b"MThd garbage", "not a readable MIDI file (it ends early)"),
        (b"hello world, not midi at all", "not a readable MIDI file"),
        (build_midi([]), "no notes"),
    ],
)
def test_bad_midi_is_a_clear_error(data, fragment):
    with pytest.raises(MelodygenError, match=re.escape(fragment)):
        import_midi(data, source="x.mid")


def test_all_songs_render_without_error():
    for song in corpus.read([SONGS]).songs:
        assert read_back(song_to_midi(song)).instruments[0].notes


def mido_midi(song: Song, tempo=None, program=None, ppq: int = PPQ) -> bytes:
    """song_to_midi as it was written with mido's messages, before it wrote the bytes itself."""
    numerator, denominator = song.time or (4, 4)
    track = mido.MidiTrack()
    if song.title:
        track.append(mido.MetaMessage("track_name", name=song.title))
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo or song.tempo or 120)))
    track.append(mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator))
    if song.key:
        name = song.key[0].upper() + song.key[1:].replace("-", "b")
        track.append(mido.MetaMessage("key_signature", key=name + "m" * song.key[0].islower()))
    program = song.program if program is None else program
    track.append(mido.Message("program_change", program=program or 0))
    delta, sounding, held = 0, [], False
    for note in song.notes:
        ticks = round(note.length * ppq)
        if sounding and held and note.midi_pitch == sounding[0]:
            sounding[1] += ticks
        else:
            if sounding:
                track.append(mido.Message("note_on", note=sounding[0], velocity=100, time=delta))
                track.append(
                    mido.Message("note_off", note=sounding[0], velocity=0, time=sounding[1])
                )
                delta = 0
            sounding = [] if note.is_rest else [note.midi_pitch, ticks]
            delta += ticks if note.is_rest else 0
        held = note.tie
    if sounding:
        track.append(mido.Message("note_on", note=sounding[0], velocity=100, time=delta))
        track.append(mido.Message("note_off", note=sounding[0], velocity=0, time=sounding[1]))
        delta = 0
    track.append(mido.MetaMessage("end_of_track", time=delta))
    midi = mido.MidiFile(type=0, ticks_per_beat=ppq, charset="utf-8")
    midi.tracks.append(track)
    out = io.BytesIO()
    midi.save(file=out)
    return out.getvalue()


def test_the_bytes_are_those_mido_writes_for_the_same_messages():
    songs = [*corpus.read([SONGS]).songs, parse_song("trip{c8 d8 e8} c4~ c4 r8. f'#16~ f'#2 r4")]
    for i, key in enumerate(KEYS):  # every key signature, meter, a long title, odd ppq
        time = (1 + 17 * i % 255, DENOMINATORS[i % len(DENOMINATORS)])
        song = Song(songs[i % len(songs)].notes, title="Ünïcode " * i, tempo=3.6 + 33.1 * i,
                    program=i % 128, time=time, key=key)  # fmt: skip
        for options in ({}, {"tempo": 61.3, "program": 0}, {"ppq": 96}, {"ppq": 7}):
            assert song_to_midi(song, **options) == mido_midi(song, **options), (key, options)
    for song in songs:
        assert song_to_midi(song) == mido_midi(song)
    with pytest.raises(ValueError, match=r"range 0\.\.16777215"):  # as mido refuses it
        song_to_midi(songs[0], tempo=3.5)
