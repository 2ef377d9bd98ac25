"""MIDI to WAV through FluidSynth and a General MIDI SoundFont.

FluidSynth's own command-line player renders the file: it is what Debian, Homebrew and the
DAW world ship, and a Python binding would need the same library installed anyway. It is
optional: without it, callers still write the MIDI and say how to install it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from melodygen.errors import BadInput, SystemFailure

SOUNDFONT_ENV = "MELODYGEN_SOUNDFONT"
SOUNDFONTS = (  # where Debian, Ubuntu, Fedora and Homebrew put a General MIDI SoundFont
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/opt/homebrew/share/soundfonts/default.sf2",
)
INSTALL = (
    "FluidSynth is not installed, so no .wav was written (the .mid was): install it with "
    "'sudo apt-get install fluidsynth fluid-soundfont-gm' (Debian, Ubuntu) or "
    "'brew install fluid-synth' (macOS)"
)
RATE = 44100


class AudioUnavailable(SystemFailure):
    """FluidSynth or a SoundFont is missing: the message says how to get them."""


def soundfont(path: str | os.PathLike[str] | None = None) -> Path:
    """The SoundFont to play with: the one given, $MELODYGEN_SOUNDFONT, or a system one."""
    given = path or os.environ.get(SOUNDFONT_ENV)
    if given:
        if not Path(given).is_file():
            raise BadInput(f"{given}: no such SoundFont file", parameter="soundfont")
        return Path(given)
    for candidate in SOUNDFONTS:
        if Path(candidate).is_file():
            return Path(candidate)
    raise AudioUnavailable(
        "no General MIDI SoundFont found, so no .wav was written (the .mid was): install "
        f"one ('sudo apt-get install fluid-soundfont-gm'), or pass --soundfont or set "
        f"{SOUNDFONT_ENV}"
    )


def check_available(font: str | os.PathLike[str] | None = None) -> Path:
    """The SoundFont, once FluidSynth is known to be there: AudioUnavailable otherwise."""
    if shutil.which("fluidsynth") is None:
        raise AudioUnavailable(INSTALL)
    return soundfont(font)


def midi_to_wav(midi: bytes, font: str | os.PathLike[str] | None = None) -> bytes:
    """A 16-bit stereo WAV at 44.1 kHz of the MIDI file, the synthesizer's release included."""
    path = check_available(font)
    with tempfile.TemporaryDirectory(prefix="melodygen-audio-") as tmp:
        source, wav = Path(tmp, "in.mid"), Path(tmp, "out.wav")
        source.write_bytes(midi)
        command = ["fluidsynth", "-ni", "-q", "-g", "0.6", "-r", str(RATE), "-T", "wav",
                   "-F", str(wav), str(path), str(source)]  # fmt: skip
        try:
            done = subprocess.run(command, capture_output=True, timeout=600, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise SystemFailure(f"fluidsynth: {error}") from error
        if done.returncode != 0 or not wav.is_file():
            message = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise SystemFailure(f"fluidsynth failed: {message[-1] if message else done.returncode}")
        return wav.read_bytes()
