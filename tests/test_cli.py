"""The command line through its runner, and as a real process where the process matters."""

from __future__ import annotations

import io
import subprocess
import sys

import pretty_midi

from conftest import NABIYA, SONGS, write
from melodygen import __version__
from melodygen.notation import read_song


def test_render_writes_midi(cli, tmp_path):
    result = cli("render", NABIYA, "-o", "nabiya.mid", "--tempo", "90", "--program", "40")
    assert result.exit_code == 0, result.output
    pm = pretty_midi.PrettyMIDI(str(tmp_path / "nabiya.mid"))
    assert [n.pitch for n in pm.instruments[0].notes][:4] == [67, 64, 64, 65]
    assert pm.instruments[0].program == 40
    assert len(pm.instruments[0].notes) == 54


def test_import_writes_a_song_that_reads_back(cli, tmp_path):
    assert cli("render", SONGS / "ode_to_joy.txt", "-o", "ode.mid").exit_code == 0
    result = cli("import", "ode.mid", "-o", "ode.txt")
    assert result.exit_code == 0, result.output
    again = read_song(tmp_path / "ode.txt")
    assert again.tokens == read_song(SONGS / "ode_to_joy.txt").tokens
    assert again.title == "Ode to Joy"


def test_unknown_token_exits_2_with_one_line(cli, tmp_path):
    write(tmp_path / "bad.txt", "title: bad\ng8 e8\nc4 h4 d4\n")
    result = cli("render", "bad.txt", "-o", "bad.mid")
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0
    assert "bad.txt:3:4:" in result.stderr and "'h4'" in result.stderr
    assert not (tmp_path / "bad.mid").exists()


def test_usage_errors_exit_2_with_one_line(cli):
    for args in (["render", NABIYA], ["render", NABIYA, "-o", "x.mid", "--tempo", "0"], ["bogus"]):
        result = cli(*args)
        assert result.exit_code == 2, args
        assert result.stderr.strip().count("\n") == 0, result.stderr


def test_missing_files_and_directories(cli, tmp_path):
    result = cli("render", "nope.txt", "-o", "x.mid")
    assert result.exit_code == 2 and "nope.txt: no such song file" in result.stderr
    result = cli("render", NABIYA, "-o", tmp_path / "missing" / "deeper" / "x.mid")
    assert result.exit_code == 0 and (tmp_path / "missing" / "deeper" / "x.mid").is_file()
    result = cli("import", "nope.mid", "-o", "x.txt")
    assert result.exit_code == 2 and "no such MIDI file" in result.stderr


def test_render_keeps_the_previous_file_on_error(cli, tmp_path):
    (tmp_path / "out.mid").write_bytes(b"previous")
    write(tmp_path / "bad.txt", "c3")
    assert cli("render", "bad.txt", "-o", "out.mid").exit_code == 2
    assert (tmp_path / "out.mid").read_bytes() == b"previous"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_help_version_and_short_help(cli):
    result = cli("--help")
    assert result.exit_code == 0
    for command in ("train", "compose", "evaluate", "compare", "render", "import"):
        assert f" {command} " in result.output
    assert "docs/cli.md" in result.output
    assert cli("-h").output == result.output
    assert "--random-seed" in cli("train", "-h").output
    assert "--seed " not in cli("train", "-h").output  # the old name, refused, is not listed
    version = cli("--version")
    assert version.exit_code == 0 and version.stdout.strip() == f"melodygen {__version__}"


def test_import_does_not_overwrite_without_force(cli, tmp_path):
    assert cli("render", NABIYA, "-o", "n.mid").exit_code == 0
    write(tmp_path / "n.txt", "c4 d4")
    result = cli("import", "n.mid", "-o", "n.txt")
    assert result.exit_code == 2
    assert "n.txt: already exists (not overwritten): pass --force to overwrite it" in result.stderr
    assert (tmp_path / "n.txt").read_text() == "c4 d4"
    assert cli("import", "n.mid", "-o", "n.txt", "--force").exit_code == 0
    assert read_song(tmp_path / "n.txt").tokens == read_song(NABIYA).tokens


def test_outputs_melodygen_cannot_write_are_refused_first(cli, tmp_path):
    for args in (["render", NABIYA, "-o", "x.mp3"], ["import", NABIYA, "-o", "x.mid"]):
        result = cli(*args)
        assert result.exit_code == 2 and "cannot write ." in result.stderr, result.stderr
    assert "must end in .mid or .midi or .wav" in cli("render", NABIYA, "-o", "x.mp3").stderr
    assert "must end in .txt" in cli("import", NABIYA, "-o", "x.mid").stderr
    # an unwritable output is refused before the input is even read
    result = cli("import", "missing.mid", "-o", "/proc/x.txt")
    assert result.exit_code == 2 and "/proc/x.txt: cannot write" in result.stderr
    result = cli("train", "missing.txt", "-o", "/proc/model")
    assert result.exit_code == 2 and "/proc/model: cannot write" in result.stderr
    assert not list(tmp_path.iterdir())


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_cli_does_not_import_tensorflow():
    proc = run("-c", "import melodygen.cli, sys; assert 'tensorflow' not in sys.modules")
    assert proc.returncode == 0, proc.stderr


def test_process_bad_input_has_no_traceback(tmp_path):
    write(tmp_path / "bad.txt", "g8 e8\n\nd4 c5\n")
    proc = run("-m", "melodygen", "render", "bad.txt", "-o", "x.mid", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "bad.txt:3:5: bad token 'c5': duration 5 is not allowed" in proc.stderr


def test_process_render_roundtrip(tmp_path):
    proc = run("-m", "melodygen", "render", str(NABIYA), "-o", "n.mid", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    pm = pretty_midi.PrettyMIDI(io.BytesIO((tmp_path / "n.mid").read_bytes()))
    assert len(pm.instruments[0].notes) == 54
