"""Long runs that survive: a real `train` stopped by SIGTERM after its second epoch and killed
by SIGKILL during its fourth, resumed each time, ends with the model an uninterrupted run
writes; a checkpoint is written whole or not at all, and a resume is checked against it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import NABIYA, invoke, numpy_model
from melodygen import checkpoint, files
from melodygen.checkpoint import Checkpoint

TINY_RNN = ("--model", "song-rnn", "--units", "32", "--embedding", "8", "--epochs", "4",
            "--transpose", "0", "--steps", "8", "--patience", "10")  # fmt: skip
MEASURED = {"train_seconds", "seconds_per_epoch", "tokens_per_second", "peak_memory_mb"}


def _env(tmp_path):
    return {**os.environ, "PYTHONUNBUFFERED": "1", "MELODYGEN_STATE": str(tmp_path / "state")}


def _start(tmp_path, *args):
    return subprocess.Popen([sys.executable, "-m", "melodygen", "train", *map(str, args)],
                            cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def _when_kept(kept: Checkpoint, epochs: int, proc) -> int:
    """Wait until the checkpoint holds ``epochs`` epochs (or more); returns how many."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (done := kept.epochs_done() or 0) >= epochs:  # never half a file: written atomically
            return done
        time.sleep(0.01)
    raise AssertionError(f"no checkpoint of {epochs} epochs: {proc.communicate()[1][-2000:]}")


def _report(path):
    report = json.loads((path / "report.json").read_text())
    report["history"].pop("epoch_seconds")
    return {k: v for k, v in report.items() if k not in MEASURED}


def test_sigterm_then_sigkill_then_resume_ends_with_the_uninterrupted_model(
    tmp_path, essen_slice, monkeypatch
):
    (tmp_path / "songs").mkdir()
    for path in sorted(essen_slice.iterdir())[:24]:
        shutil.copy(path, tmp_path / "songs")
    args = (tmp_path / "songs", *TINY_RNN)
    numpy_model(tmp_path / "m")  # a model there before: kept whole until the new one is
    before = {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir()}
    reference = _start(tmp_path, *args, "-o", "whole")  # side by side: one wait for TensorFlow
    run = _start(tmp_path, *args, "-o", "m")
    kept = Checkpoint(tmp_path / "m.partial", {})
    try:
        _when_kept(kept, 2, run)
        run.send_signal(signal.SIGTERM)
        _, stderr = run.communicate(timeout=60)
        assert run.returncode == 128 + signal.SIGTERM, stderr
        done = kept.epochs_done()
        assert 2 <= done < 4
        assert {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir()} == before
        assert stderr.strip().splitlines()[-1] == (
            f"error: interrupted; nothing was written; {done} epochs are kept in m.partial: "
            f"the same command with --resume continues from epoch {done + 1}"
        )
        # a resume is of the same run: a setting that differs is named, before any training
        monkeypatch.chdir(tmp_path)
        result = invoke("train", *args, "-o", "m", "--resume", "--units", "16")
        assert result.exit_code == 2
        assert "m.partial: the checkpoint was trained with --units 32, not 16" in result.stderr
        run = _start(tmp_path, *args, "-o", "m", "--resume")
        _when_kept(kept, max(done + 1, 3), run)  # into the fourth epoch, or its checkpoint
        run.kill()
        run.communicate(timeout=60)
        assert kept.epochs_done() >= 3  # whole: the previous checkpoint or the new one
        resumed = subprocess.run(run.args, cwd=tmp_path, env=_env(tmp_path), capture_output=True,
                                 text=True, timeout=120)  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        reference.communicate(timeout=120)
        assert reference.returncode == 0
    finally:
        for proc in (reference, run):
            proc.kill()
    assert not kept.directory.exists()  # a finished run removes its checkpoint
    names = sorted(p.name for p in (tmp_path / "whole").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "m").iterdir())
    for name in names:  # the same bytes, but for the report's measured times and memory
        if name != "report.json":
            assert (tmp_path / "m" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
    assert _report(tmp_path / "m") == _report(tmp_path / "whole")


def test_a_checkpoint_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    kept = Checkpoint(tmp_path / "m.partial", {"kind": "song-rnn"}, resume=True)
    history = {"loss": [1.0, 0.5]}
    kept.save({"history": history}, [np.arange(3.0), np.ones((2, 2), np.float32)])

    def dies_midway(fd):  # the disk fills up, or kill -9, after half the bytes
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "fsync", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        kept.save({"history": {"loss": [1.0, 0.5, 0.4]}}, [np.zeros(3)])
    monkeypatch.undo()
    loop, arrays = kept.load()
    assert loop == {"history": history} and kept.epochs_done() == 2
    assert [a.tolist() for a in arrays] == [[0.0, 1.0, 2.0], [[1.0, 1.0], [1.0, 1.0]]]
    assert os.listdir(kept.directory) == [checkpoint.FILE]  # no temporary file left behind
    (kept.path).write_bytes(b"PK\x03\x04 half a file")
    with pytest.raises(Exception, match="not a readable checkpoint"):
        kept.epochs_done()


def test_without_resume_a_checkpoint_is_named_and_a_fresh_run_replaces_it(
    cli, tmp_path, monkeypatch
):
    args = ("train", NABIYA, "--model", "mlp", "--units", "8", "--epochs", "2", "-o", "m")
    saves = Checkpoint.save

    def save_then_stop(self, loop, arrays):  # Ctrl-C right after the first checkpoint
        saves(self, loop, arrays)
        raise KeyboardInterrupt

    monkeypatch.setattr(Checkpoint, "save", save_then_stop)
    result = cli(*args)
    assert result.exit_code == 130 and result.stderr.strip().endswith(
        "1 epoch is kept in m.partial: the same command with --resume continues from epoch 2"
    )
    monkeypatch.setattr(Checkpoint, "save", saves)  # (undo would leave the cli's directory)
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == (
        "1 epoch is kept in m.partial by an interrupted run: pass --resume to continue from "
        "epoch 2 (this run starts again and replaces them)"
    )
    assert (tmp_path / "m" / "weights.npz").is_file() and not (tmp_path / "m.partial").exists()
    Checkpoint(tmp_path / "m.partial", {"kind": "stateful"}).save({"history": {"loss": []}}, [])
    result = cli(*args, "--resume")  # another run's: named, before any training
    assert result.exit_code == 2
    assert "m.partial: the checkpoint was trained with --random-seed the default, not 5" in (
        result.stderr
    )
    (tmp_path / "m.partial" / checkpoint.FILE).write_bytes(b"PK\x03\x04 half a file")
    result = cli(*args)
    assert result.exit_code == 0 and "not a readable checkpoint" in result.stderr.splitlines()[0]
    assert not (tmp_path / "m.partial").exists()
    result = cli(*args, "--resume")
    assert result.exit_code == 2 and "m.partial: no checkpoint to resume from" in result.stderr
    result = cli("train", NABIYA, "--model", "ngram", "-o", "n", "--resume")
    assert result.exit_code == 2 and "trained in one pass: nothing to resume" in result.stderr
