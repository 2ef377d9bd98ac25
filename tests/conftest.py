from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from melodygen.cli import app

ROOT = Path(__file__).resolve().parent.parent
SONGS = ROOT / "songs"
NABIYA = SONGS / "nabiya.txt"
# The chapter's 54 notes, as the chapter's code lists them.
CHAPTER_SEQ = [
    'g8', 'e8', 'e4', 'f8', 'd8', 'd4', 'c8', 'd8', 'e8', 'f8', 'g8', 'g8', 'g4',
    'g8', 'e8', 'e8', 'e8', 'f8', 'd8', 'd4', 'c8', 'e8', 'g8', 'g8', 'e8', 'e8', 'e4',
    'd8', 'd8', 'd8', 'd8', 'd8', 'e8', 'f4', 'e8', 'e8', 'e8', 'e8', 'e8', 'f8', 'g4',
    'g8', 'e8', 'e4', 'f8', 'd8', 'd4', 'c8', 'e8', 'g8', 'g8', 'e8', 'e8', 'e4',
]  # fmt: skip


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """Run melodygen in a fresh working directory; returns the click Result."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def run(*args: str | Path):
        return runner.invoke(app, [str(a) for a in args])

    return run


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
