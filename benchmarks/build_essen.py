"""Build the built-in model, melodygen/models/essen/: a song-rnn with its default settings,
trained on the shared corpus (../shared/corpus/essen.tar.gz, 7,623 Essen tunes) with the
default held-out split and random seed, then saved compact (float16 weights, the songs as token
ids). The same seed gives the same weights: rebuild it whenever the song-rnn's defaults change.

    python benchmarks/build_essen.py                  # about 10 minutes on 2 cores
    python benchmarks/build_essen.py --trained DIR    # only save DIR compact, as the model

It prints the model's held-out figures and the size of what it wrote (docs/models.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import tarfile
import tempfile
from pathlib import Path

from melodygen import store, tasks
from melodygen.kinds.song_rnn import SONG_RNN
from melodygen.training import DEFAULT_SEED

ESSEN = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "essen.tar.gz"
OUT = store.BUILT_IN / "essen"


def heard(history) -> None:
    if history.valid_loss:
        print(f"  epoch {history.epochs_run}: held-out loss {history.valid_loss[-1]:.4f} at "
              f"{history.seconds:.0f} s", file=sys.stderr, flush=True)  # fmt: skip


def build(corpus: Path, seed: int, work: Path) -> Path:
    with tarfile.open(corpus) as tar:
        tar.extractall(work / "songs", filter="data")
    (songs,) = [p for p in (work / "songs").rglob("*") if p.is_dir() and any(p.glob("*.txt"))]
    os.environ[store.STATE_ENV] = str(work / "state")  # the user's latest model stays theirs
    request = tasks.TrainRequest((songs,), SONG_RNN, SONG_RNN.spec, seed=seed,
                                 out=work / "essen-song-rnn")  # fmt: skip
    return tasks.train(request, on_epochs=lambda _: heard).path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=ESSEN)
    parser.add_argument("--random-seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--trained", type=Path, help="a model directory trained already")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="melodygen-essen-") as tmp:
        trained = args.trained or build(args.corpus, args.random_seed, Path(tmp))
        store.save_compact(store.load(trained), args.out)
    loaded = store.load(args.out)
    held = loaded.meta.held_out
    size = sum(f.stat().st_size for f in args.out.iterdir())
    print(f"wrote {args.out}/: {size / 1e6:.2f} MB, {len(loaded.meta.songs):,} training songs, "
          f"{len(held):,} held out")  # fmt: skip
    for f in sorted(args.out.iterdir()):
        print(f"  {f.name}: {f.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
