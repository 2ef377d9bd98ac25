"""Every model kind trained on the shared Essen corpus with the default held-out split: one table.

For each kind: epochs run, wall time of the whole `train` (reading, training, measuring,
writing), training tokens per second, bits per token on the training and the held-out songs,
and the held-out pitch bits per note and accuracy (docs/cli.md defines the measures). The
chapter's kinds run a bounded number of epochs (--chapter-epochs, with --patience), the
stateful ones with songs side by side (--stateful-batch). It also times reading the corpus.

    python benchmarks/corpus.py                  # all 7,623 tunes
    python benchmarks/corpus.py --quick          # 300 tunes, a couple of epochs: a smoke run
    python benchmarks/corpus.py --kinds ngram    # some kinds only
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from melodygen import corpus, store, tasks
from melodygen.kinds import CHAPTER_KINDS, KINDS, Kind, Spec

ESSEN = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "essen.tar.gz"


def unpack(archive: Path, work: Path, limit: int | None) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(work, filter="data")
    songs = work / "essen"
    if limit:
        for path in sorted(songs.iterdir())[limit:]:
            path.unlink()
    return songs


def spec_for(kind: Kind, args: argparse.Namespace) -> Spec:
    """The kind's defaults, except a bounded number of epochs (and songs side by side for the
    chapter's stateful kinds)."""
    chapter = kind.name in CHAPTER_KINDS
    wanted = {"epochs": args.chapter_epochs if chapter else args.epochs, "patience": args.patience}
    if chapter and kind.stateful:
        wanted["batch"] = args.stateful_batch
    names = {s.name for s in kind.spec.settings()}
    return kind.spec.replace(**{k: v for k, v in wanted.items() if k in names})


def _log(label: str, ends: list[float], start: float):
    """Hears of each epoch: notes when it ended, and says so on stderr."""

    def on_epoch(history) -> None:
        if history.epochs_run > len(ends):
            ends.append(time.perf_counter() - start)
            held = f" held-out loss {history.valid_loss[-1]:.4f}" if history.valid_loss else ""
            print(f"  {label} epoch {history.epochs_run} at {ends[-1]:.0f} s{held}",
                  file=sys.stderr, flush=True)  # fmt: skip

    return on_epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, help="a directory of songs (default: unpack Essen)")
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--quick", action="store_true", help="300 tunes, 2 epochs")
    parser.add_argument("--chapter-epochs", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=200, help="for the other neural kinds")
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--stateful-batch", type=int, default=64)
    parser.add_argument("--keep", type=Path, help="keep the model directories here")
    args = parser.parse_args()
    if args.quick:
        args.chapter_epochs = args.epochs = 2
    work = Path(tempfile.mkdtemp(prefix="melodygen-corpus-"))
    os.environ[store.STATE_ENV] = str(work / "state")  # leave the user's latest model alone
    try:
        songs = args.corpus or unpack(ESSEN, work, 300 if args.quick else None)
        start = time.perf_counter()
        read = corpus.read([songs])
        seconds = time.perf_counter() - start
        tokens = sum(len(s.notes) for s in read.songs)
        print(f"read {len(read.songs):,} songs ({tokens:,} tokens) in {seconds:.1f} s")
        print("| model | epochs (best) | wall s | to best s | s/epoch | tokens/s "
              "| train bits/token | held-out bits/token | held-out pitch bits/note "
              "| held-out accuracy |")  # fmt: skip
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for name in args.kinds:
            start = time.perf_counter()
            ends: list[float] = []  # seconds from the start to the end of each epoch
            hear = functools.partial(_log, ends=ends, start=start)
            kind = KINDS[name]
            out = (args.keep or work) / name
            request = tasks.TrainRequest((songs,), kind, spec_for(kind, args), out=out)
            trained = tasks.train(request, on_epochs=hear)
            wall = time.perf_counter() - start
            r, v = trained.report, trained.report.validation
            speed = f"{r.tokens_per_second:,.0f}" if r.epochs_run else "counted"
            best = r.best_epoch or r.epochs_run
            to_best = f"{ends[best - 1]:.0f}" if best and len(ends) >= best else "-"
            per_epoch = f"{r.seconds_per_epoch:.1f}" if r.epochs_run else "-"
            print(f"| {name} | {r.epochs_run} ({best}) | {wall:.0f} | {to_best} | {per_epoch} | "
                  f"{speed} | {r.training.bits_per_token:.3f} | {v.bits_per_token:.3f} | "
                  f"{v.pitch_bits_per_note:.3f} | {v.accuracy:.1%} |", flush=True)  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
