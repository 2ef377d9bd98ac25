"""The learning curve of a user with a few tunes of their own: what 10, 30, 100 and 300 tunes of a
collection give, four ways, measured on the rest of that collection.

For each left-out collection (han: Chinese folk songs, far from the German tunes; boehme:
German): a song-rnn with its defaults is pretrained on the shared corpus without that
collection (the default held-out split, seed 5). Of the collection's tunes, in a fixed shuffle
(seed 0) of their sorted names, the first 300 are the pool the training tunes come from (10, 30,
100 and 300 of them, each set inside the next) and the rest are the test tunes. Each training
set is split as `train` splits a directory (the CRC rule, a tenth held out to stop on; at least
one tune). Then, on the test tunes, held-out pitch bits per note and bits per token, and the
seconds of training, for (a) an ngram on the training set alone, (b) a song-rnn trained on it
from scratch, (c) the pretrained model alone, (d) the pretrained model fine-tuned on it
(`train --from`, its defaults).

    python benchmarks/few_tunes.py                       # about an hour on 2 cores
    python benchmarks/few_tunes.py --collections han --sizes 30
    python benchmarks/few_tunes.py --choose              # choose the fine-tuning defaults

--choose measures fine-tuning settings without the test tunes: for han, 30 and 100 training
tunes, each candidate is measured on the pool's other tunes (pool[n:300]).
--keep DIR keeps the pretrained models and each result (results.json), so a run resumes.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

from melodygen import corpus, store, tasks, training
from melodygen.evaluation import evaluate
from melodygen.kinds.ngram import NGRAM
from melodygen.kinds.song_rnn import SONG_RNN

ESSEN = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "essen.tar.gz"
POOL = 300
METHODS = ("ngram", "from scratch", "pretrained", "fine-tuned")
CANDIDATES = [  # --choose: what fine-tuning changes of its base's settings
    {"learning_rate": lr, "steps": steps}
    for lr in (0.0003, 0.001, 0.003, 0.01)
    for steps in (10, 20)
]


def collection(songs: list, name: str) -> list:
    """The songs of one Essen collection: their file names start with its name, then a digit."""
    return [s for s in songs if re.match(r"[a-z]+", corpus.file_name(s))[0] == name]


def pretrained(keep: Path, songs: Path, left_out: str) -> store.Loaded:
    """A song-rnn with its defaults on the corpus without one collection (kept in ``keep``)."""
    out = keep / f"pre-no-{left_out}"
    if not (out / store.META_FILE).is_file():
        work = keep / f"no-{left_out}-songs"
        work.mkdir(parents=True, exist_ok=True)
        for path in songs.iterdir():
            if not path.name.startswith(left_out):
                shutil.copy(path, work)
        request = tasks.TrainRequest((work,), SONG_RNN, SONG_RNN.spec, out=out)
        tasks.train(request)
        shutil.rmtree(work)
    return store.load(out)


def split(songs: list) -> tuple[list, list]:
    """As `train` splits a directory, with at least one tune held out to stop on."""
    train, held = corpus.split(songs, corpus.DEFAULT_VALID)
    return (train, held) if held else (songs[:-1], songs[-1:])


def measured(model, test: list, seconds: float, history=None) -> dict:
    m = evaluate(model, test, full_song=False).overall
    epochs = (history.epochs_run, history.best_epoch) if history else (0, None)
    return {"pitch_bits_per_note": m.pitch_bits_per_note, "bits_per_token": m.bits_per_token,
            "seconds": seconds, "epochs": epochs[0], "best_epoch": epochs[1]}  # fmt: skip


def run(method: str, songs: list, test: list, base: store.Loaded, tuning: dict | None = None):
    """Train (or not) one way on ``songs``, measure on ``test``."""
    if method == "pretrained":
        return measured(base.model, test, 0.0)
    start = time.perf_counter()
    if method == "ngram":
        trained = training.train(NGRAM, NGRAM.spec, songs, seed=5)
        return measured(trained.model, test, time.perf_counter() - start)
    train, held = split(songs)
    if method == "from scratch":
        spec, start_from = SONG_RNN.spec, None
    else:
        spec, start_from = SONG_RNN.tuned_spec(base.meta.spec).replace(**(tuning or {})), base.model
    trained = training.train(SONG_RNN, spec, train, 5, valid=held, base=start_from)
    return measured(trained.model, test, time.perf_counter() - start, trained.history)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=ESSEN)
    parser.add_argument("--collections", nargs="+", default=["han", "boehme"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 30, 100, 300])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--choose", action="store_true", help="choose the fine-tuning defaults")
    parser.add_argument("--keep", type=Path, help="keep pretrained models and results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="melodygen-few-") as tmp:
        keep = args.keep or Path(tmp)
        keep.mkdir(parents=True, exist_ok=True)
        with tarfile.open(args.corpus) as tar:
            tar.extractall(Path(tmp) / "corpus", filter="data")
        songs_dir = Path(tmp) / "corpus" / "essen"
        every = corpus.read([songs_dir]).songs
        results_file = keep / ("choose.json" if args.choose else "results.json")
        results = json.loads(results_file.read_text()) if results_file.is_file() else {}
        for name in ["han"] if args.choose else args.collections:
            base = pretrained(keep, songs_dir, name)
            tunes = sorted(collection(every, name), key=corpus.file_name)
            order = np.random.default_rng(0).permutation(len(tunes))
            pool, test = [tunes[i] for i in order[:POOL]], [tunes[i] for i in order[POOL:]]
            print(f"{name}: {len(tunes)} tunes, {len(test)} to test on", file=sys.stderr)
            for n in [30, 100] if args.choose else args.sizes:
                songs = pool[:n]
                cells = (
                    [(json.dumps(c), "fine-tuned", c, pool[n:]) for c in CANDIDATES]
                    if args.choose
                    else [(m, m, None, test) for m in args.methods]
                )
                for label, method, tuning, measure_on in cells:
                    key = f"{name} {n} {label}"
                    if key not in results:
                        print(f"  {key}", file=sys.stderr, flush=True)
                        results[key] = run(method, songs, measure_on, base, tuning)
                        results_file.write_text(json.dumps(results, indent=1))
                    r = results[key]
                    figures = f"{r['pitch_bits_per_note']:.3f} | {r['bits_per_token']:.3f}"
                    epochs = f"{r['epochs']} ({r['best_epoch']})" if r["epochs"] else "-"
                    print(f"| {name} | {n} | {label} | {figures} | {r['seconds']:.0f} | "
                          f"{epochs} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
