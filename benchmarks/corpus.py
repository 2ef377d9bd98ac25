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
import os
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

from melodygen import corpus, store, tasks
from melodygen.models import CHAPTER_KINDS, KINDS
from melodygen.training import TrainConfig

ESSEN = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "essen.tar.gz"


def unpack(archive: Path, work: Path, limit: int | None) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(work, filter="data")
    songs = work / "essen"
    if limit:
        for path in sorted(songs.iterdir())[limit:]:
            path.unlink()
    return songs


def config_for(kind: str, args: argparse.Namespace) -> TrainConfig:
    if kind in CHAPTER_KINDS:
        batch = args.stateful_batch if KINDS[kind].stateful else None
        return TrainConfig(kind, epochs=args.chapter_epochs, patience=args.patience, batch=batch)
    return TrainConfig(kind, epochs=args.epochs, patience=args.patience)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, help="a directory of songs (default: unpack Essen)")
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--quick", action="store_true", help="300 tunes, 2 epochs")
    parser.add_argument("--chapter-epochs", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=200, help="for the other neural kinds")
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--stateful-batch", type=int, default=64)
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
        print("| model | epochs | wall s | tokens/s | train bits/token | held-out bits/token "
              "| held-out pitch bits/note | held-out accuracy |")  # fmt: skip
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for kind in args.kinds:
            start = time.perf_counter()
            trained = tasks.train([songs], config_for(kind, args), work / kind)
            wall = time.perf_counter() - start
            r, v = trained.report, trained.report.validation
            speed = f"{r.tokens_per_second:,.0f}" if r.epochs_run else "counted"
            print(f"| {kind} | {r.epochs_run} | {wall:.0f} | {speed} | "
                  f"{r.training.bits_per_token:.3f} | {v.bits_per_token:.3f} | "
                  f"{v.pitch_bits_per_note:.3f} | {v.accuracy:.1%} |", flush=True)  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
