"""Import of MIDI as DAWs, notation programs and the web write it (issue 12): each defect found
on real files, rebuilt here with mido, and the notation's ties and triplets."""

from __future__ import annotations

import io
import random

import mido
import music21
import pretty_midi
import pytest

from conftest import invoke
from melodygen import corpus, transcribe
from melodygen.errors import MelodygenError
from melodygen.midi import song_to_midi
from melodygen.notation import format_song, parse_song, read_song
from melodygen.transcribe import import_midi

PPQ = 480


def track(events, name=None):
    """A mido track from (tick, message) pairs in any order; notes as (start, end, pitch)
    triples become note_on/note_off pairs on channel 0."""
    timed = []
    for event in events:
        if len(event) == 3:
            start, end, pitch = event
            timed.append((start, 1, mido.Message("note_on", note=pitch, velocity=80)))
            timed.append((end, 0, mido.Message("note_off", note=pitch)))
        else:
            timed.append((event[0], 2, event[1]))
    timed.sort(key=lambda e: (e[0], e[1]))
    out = mido.MidiTrack([mido.MetaMessage("track_name", name=name)] if name else [])
    now = 0
    for tick, _, msg in timed:
        out.append(msg.copy(time=tick - now))
        now = tick
    return out


def midi_bytes(*tracks, ppq=PPQ, charset="utf-8"):
    midi = mido.MidiFile(type=1, ticks_per_beat=ppq, charset=charset)
    midi.tracks.extend(tracks)
    out = io.BytesIO()
    midi.save(file=out)
    return out.getvalue()


def melody(pitches_and_beats, start=0, held=1.0, jitter=0, rng=None, ppq=PPQ):
    """Notes one after another, each held ``held`` of its length, onsets moved by up to
    ``jitter`` ticks."""
    notes, at = [], start
    for pitch, beats in pitches_and_beats:
        ticks = round(beats * ppq)
        onset = at + (rng.randint(-jitter, jitter) if jitter and at else 0)
        if pitch is not None:
            notes.append((onset, onset + round(ticks * held), pitch))
        at += ticks
    return notes


def tempo(tick, bpm):
    return (tick, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))


def meter(tick, numerator, denominator):
    signature = mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator)
    return (tick, signature)


def test_1_control_characters_leave_titles_and_the_song_reads_back(tmp_path):
    data = midi_bytes(track([(0, 480, 60)], name="Piano\0"))
    (tmp_path / "nul.mid").write_bytes(data)
    result = invoke("import", tmp_path / "nul.mid", "-o", tmp_path / "nul.txt")
    assert result.exit_code == 0, result.output
    assert read_song(tmp_path / "nul.txt").title == "Piano"


@pytest.mark.parametrize(
    ("raw", "title"),
    [(b"Caf\xe9 \x01Song", "Café Song"), ("Café".encode(), "Café"), (b"\x85\x9f", None)],
)
def test_1_names_are_utf8_else_latin1_and_control_characters_go(raw, title):
    data = midi_bytes(track([(0, 480, 60)], name=raw.decode("latin-1")), charset="latin-1")
    assert import_midi(data).song.title == title


def test_2_the_last_tempo_at_a_tick_wins():
    notes = track([tempo(0, 60), tempo(0, 150), (0, 480, 60)])
    assert import_midi(midi_bytes(notes)).song.tempo == 150
    conductor = track([tempo(0, 60)])  # and across tracks, as a player merges them
    assert (
        import_midi(midi_bytes(conductor, track([tempo(0, 150), (0, 480, 60)]))).song.tempo == 150
    )


def test_3_tempo_and_meter_changes_are_reported_and_a_pickup_keeps_the_body_meter():
    # a pickup bar of 1/4, then 4/4; four tempo events, the first after the pickup kept
    meters = [meter(0, 1, 4), meter(480, 4, 4), meter(480 * 9, 3, 4)]
    tempos = [tempo(0, 100), tempo(480, 90), tempo(480 * 5, 80), tempo(480 * 9, 70)]
    conductor = track(meters + tempos)
    notes = track(melody([(67, 1)] + [(60 + i % 5, 1) for i in range(12)]))
    imported = import_midi(midi_bytes(conductor, notes))
    assert (imported.song.time, imported.song.tempo) == ((4, 4), 90)
    summary = imported.summary()
    assert "a pickup of 1 beat" in summary
    assert "2 tempo changes not kept (80 bpm at beat 5, ...)" in summary
    assert "1 meter change not kept (3/4 at beat 9)" in summary


def test_4_a_legato_line_keeps_every_note():
    # descending, each note held 40 ticks into the next at PPQ 480
    notes = [(i * 480, (i + 1) * 480 + 40, 72 - i) for i in range(8)]
    song = import_midi(midi_bytes(track(notes))).song
    assert song.tokens == ["c'4", "b4", "b-4", "a4", "a-4", "g4", "f#4", "f4"]


def test_5_a_note_longer_than_any_token_is_tied_whole():
    # 5 beats, then 1.25 beats, then a quarter
    notes = [(0, 5 * 480, 60), (5 * 480, 5 * 480 + 600, 62), (3000, 3480, 64)]
    song = import_midi(midi_bytes(track(notes))).song
    assert song.tokens == ["c1~", "c4", "d4~", "d16", "e4"]
    pm = pretty_midi.PrettyMIDI(io.BytesIO(song_to_midi(song)))
    ticks = [(pm.time_to_tick(n.start), pm.time_to_tick(n.end)) for n in pm.instruments[0].notes]
    assert ticks == [(0, 2400), (2400, 3000), (3000, 3480)]  # three sounding notes


def test_6_quarter_eighth_triplets_have_no_false_rests():
    notes = melody([(69, 2 / 3), (67, 1 / 3)] * 3 + [(65, 2)])
    song = import_midi(midi_bytes(track(notes))).song
    assert song.tokens == ["trip{a4}", "trip{g8}"] * 3 + ["f2"]
    assert format_song(song).splitlines()[-1] == "trip{a4 g8 a4 g8 a4 g8} f2"


@pytest.mark.parametrize(
    ("pitches", "key", "spelled"),
    [  # F# minor: f# g# a b c# d e# ... black keys as sharps; A-flat major: d- and g-
        ([66, 68, 69, 71, 73, 74, 77, 78, 73, 69, 66], "f#", "f#4 g#4 a4 b4 c'#4 d'4 f'4"),
        ([68, 70, 72, 73, 75, 77, 79, 80, 75, 73, 72, 68], "A-", "a-4 b-4 c'4 d'-4 e'-4 f'4 g'4"),
    ],
)
def test_7_black_keys_are_spelled_from_the_estimated_key(pitches, key, spelled):
    song = import_midi(midi_bytes(track(melody([(p, 1) for p in pitches])))).song
    assert song.key == key
    assert " ".join(song.tokens).startswith(spelled)
    assert "g-" not in " ".join(song.tokens) if key == "f#" else "c#" not in " ".join(song.tokens)


def test_7_a_key_signature_wins_and_renders_back():
    signature = (0, mido.MetaMessage("key_signature", key="Ebm"))
    imported = import_midi(midi_bytes(track([signature, *melody([(66, 1), (61, 1)])])))
    assert imported.song.key == "e-" and imported.key_from == "key signature"
    assert imported.song.tokens == ["g-4", "d-4"]
    pm = pretty_midi.PrettyMIDI(io.BytesIO(song_to_midi(imported.song)))
    (change,) = pm.key_signature_changes
    assert pretty_midi.key_number_to_key_name(change.key_number) == "Eb minor"


def on_channel(events: mido.MidiTrack, channel: int) -> mido.MidiTrack:
    return mido.MidiTrack(m.copy(channel=channel) if not m.is_meta else m for m in events)


def test_8_the_program_comes_from_the_melody_track():
    program = mido.Message("program_change", program=33)
    bass = on_channel(track([(0, program), *melody([(36, 2)] * 4)], name="Bass"), 1)
    flute = track([(0, program.copy(program=73)), *melody([(79, 1), (81, 1)] * 4)], name="Flute")
    imported = import_midi(midi_bytes(bass, on_channel(flute, 2)))
    assert imported.song.program == 73
    assert imported.part == 'track 2 "Flute"' and imported.song.tokens[0] == "g'4"
    # a program change holds for its channel from any track (some files keep them in the first)
    changes = track([(0, program.copy(channel=2, program=71)), (0, program.copy(program=33))])
    flute = on_channel(track(melody([(79, 1), (81, 1)] * 4), name="Flute"), 2)
    assert import_midi(midi_bytes(changes, flute)).song.program == 71


WRITTEN = (
    "d8 f8 a4 g8 f8 e4 | d8. e16 f4 a2 | a8 b-8 c'4 b-8 a8 g4 | f8 e8 d8 e8 f2 | "
    "a4 g8 f8 e8 d8 c#4 | d2 r4 d16 e16 f16 g16 | a4. g8 f2 | d2. r4"
)


@pytest.mark.parametrize("seed", range(5))
def test_9_a_daw_played_part_imports_to_exactly_the_written_melody(seed):
    written = parse_song(f"key: d\n{WRITTEN}")
    assert len([n for n in written.notes if not n.is_rest]) == 36
    pitched = [(n.midi_pitch, n.beats) for n in written.notes]
    played = melody(pitched, held=0.85, jitter=3, rng=random.Random(seed))
    bar_end = (32 * PPQ, mido.MetaMessage("end_of_track"))  # where a DAW ends the part: a bar line
    song = import_midi(midi_bytes(track([tempo(0, 96), *played, bar_end]))).song
    assert song.tokens == written.tokens
    assert song.key == "d" and song.tempo == 96


def test_10_import_says_what_it_kept_and_dropped(tmp_path):
    drums = mido.MidiTrack(
        [
            mido.Message("note_on", note=36, velocity=100, channel=9),
            mido.Message("note_off", note=36, channel=9, time=480),
        ]
        * 4
    )
    chords = [
        (i * 480, (i + 1) * 480, p) for i, top in enumerate((72, 74, 76, 77)) for p in (top, 64, 60)
    ]
    bass = track(melody([(36, 2), (43, 2)]), name="Bass")
    (tmp_path / "band.mid").write_bytes(midi_bytes(track(chords, name="Keys"), bass, drums))
    result = invoke("import", tmp_path / "band.mid", "-o", tmp_path / "band.txt")
    assert result.exit_code == 0, result.output
    (line,) = result.stderr.splitlines()
    assert (
        'melody from track 1 "Keys" (the most melody-like of 2 parts; left out 1 other part, '
        "1 drum part)" in line
    )
    assert "kept 4 of 18 notes (dropped 8 under the melody, 2 in other parts, 4 drums)" in line
    assert line.endswith("grid 1/4; key C (estimated)")


def test_track_by_number_or_name_and_a_clear_error_otherwise(tmp_path):
    low = track(melody([(48, 1), (50, 1)]), name="Cello")
    high = track(melody([(72, 1), (74, 1)]), name="Violin I")
    data = midi_bytes(low, high)
    assert import_midi(data).song.tokens == ["c'4", "d'4"]
    assert import_midi(data, track="1").song.tokens == ["C4", "D4"]
    assert import_midi(data, track="cello").song.tokens == ["C4", "D4"]
    (tmp_path / "duo.mid").write_bytes(data)
    for asked in ("3", "viola"):
        result = invoke("import", tmp_path / "duo.mid", "-o", tmp_path / "x.txt", "--track", asked)
        assert result.exit_code == 2, result.output
        assert result.stderr.strip() == (
            f"error: --track: '{asked}' is no track with notes "
            '(tracks with notes: track 1 "Cello", track 2 "Violin I")'
        )
    result = invoke("import", tmp_path / "duo.mid", "-o", tmp_path / "x.txt", "--grid", "5")
    assert result.exit_code == 2 and "--grid: must be one of 4, 8, 12, 16" in result.stderr


def test_a_grid_can_be_asked_for():
    swung = melody([(60, 2 / 3), (62, 1 / 3), (64, 2 / 3), (65, 1 / 3)])
    assert import_midi(midi_bytes(track(swung))).song.tokens[:2] == ["trip{c4}", "trip{d8}"]
    straight = import_midi(midi_bytes(track(swung)), grid=4).song  # sixteenths: 2/3 -> 3/4
    assert straight.tokens == ["c8.", "d16", "e8.", "f16"]


def test_ties_and_triplets_agree_with_music21():
    text = "c4~ c4 trip{c8 d8 e8} trip{f4 g8} r4 trip{r8 c'8~ c'8} d2~ d8 r8"
    ours = parse_song(text)
    theirs = music21.converter.parse(f"tinyNotation: 4/4 {text}").flatten().notesAndRests
    assert [float(n.length) for n in ours.notes] == [float(n.quarterLength) for n in theirs]
    assert [n.tie for n in ours.notes] == [
        bool(m.tie and m.tie.type in ("start", "continue")) for m in theirs
    ]
    assert [n.midi_pitch for n in ours.notes] == [
        None if m.isRest else m.pitch.midi for m in theirs
    ]
    # and our text of the song is one music21 reads the same way
    again = music21.converter.parse(
        "tinyNotation: 4/4 " + format_song(ours).replace("|", " ")
    ).flatten()
    assert [float(n.quarterLength) for n in again.notesAndRests] == [
        float(n.length) for n in ours.notes
    ]


def test_rendered_ties_sound_once_and_triplets_are_exact():
    song = parse_song("c4~ c4 trip{d8 e8 f8} g4~ a4")
    pm = pretty_midi.PrettyMIDI(io.BytesIO(song_to_midi(song)))
    ticks = [
        (pm.time_to_tick(n.start), pm.time_to_tick(n.end), n.pitch) for n in pm.instruments[0].notes
    ]
    # a tie into another pitch holds nothing
    assert ticks == [(0, 960, 60), (960, 1120, 62), (1120, 1280, 64), (1280, 1440, 65),
                     (1440, 1920, 67), (1920, 2400, 69)]  # fmt: skip
    assert import_midi(song_to_midi(song)).song.tokens == ["c2", "trip{d8}", "trip{e8}",
                                                          "trip{f8}", "g4", "a4"]  # fmt: skip


ABC = """X:1
T:Triplets and ties
M:2/4
L:1/8
K:G
(3GAB c2 | d2- d>e | d4 |]
"""


def test_abc_and_musicxml_import_through_music21(tmp_path):
    (tmp_path / "tune.abc").write_text(ABC)
    imported = transcribe.import_file(tmp_path / "tune.abc")
    song = imported.song
    assert song.title == "Triplets and ties"
    assert (song.time, song.key) == ((2, 4), "G")
    # (3GAB: a triplet; d2- d>e: a tie, then broken rhythm (a dotted eighth and a sixteenth)
    assert song.tokens == ["trip{g8}", "trip{a8}", "trip{b8}", "c'4", "d'4..", "e'16", "d'2"]
    score = music21.converter.parse("tinyNotation: 3/4 e4 f#8 g8 trip{a8 b8 c'8} d'2.")
    score.write("musicxml", fp=tmp_path / "waltz.musicxml")
    waltz = transcribe.import_file(tmp_path / "waltz.musicxml").song
    assert waltz.time == (3, 4)
    assert waltz.tokens == ["e4", "f#8", "g8", "trip{a8}", "trip{b8}", "trip{c'8}", "d'2."]
    (tmp_path / "broken.abc").write_text("X:1\nK:\n(((")
    with pytest.raises(MelodygenError, match=r"broken\.abc"):
        transcribe.import_file(tmp_path / "broken.abc")
    # train reads them in directories, skipping what cannot be read and saying why
    read = corpus.read([tmp_path])
    assert sorted(song.name for song in read.songs) == ["tune", "waltz"]
    assert [(skip.path, "no notes" in skip.reason) for skip in read.skipped] == [
        (str(tmp_path / "broken.abc"), True)
    ]
