"""IDyOM's benchmark for melodygen's models: pitch bits per note of each tune of a data set,
predicted by a model of the others, without and with within-tune learning (each kind's
default, Kind.within: within.py), beside IDyOM's figure where one exists (Pearce 2005).

Data sets: ``essen``, the shared split (the built-in model's held-out songs: the built-in model
is a song-rnn with its defaults trained from scratch on the split's training songs; the ngram
is counted on the same songs); ``chorales``, the soprano lines `melodygen corpus chorales`
writes, 10-fold (`melodygen crossval`); and Essen collections one at a time, 10-fold. Methods:
an ngram, a song-rnn from scratch, a song-rnn fine-tuned from the built-in model (`--from
essen`), each with its defaults. The built-in model learned from 90% of every Essen collection,
so its fine-tuned rows on them (marked *) are not a fair comparison: it saw most test tunes.

    python benchmarks/listener.py --work DIR     # hours on 2 cores; keeps each fold's models
    python benchmarks/listener.py --work DIR --sets chorales --methods ngram,fine-tuned

With --work, a run resumes: a data set and method whose crossval.json is there is not
trained again, only measured. --folds 0,1,2 measures only those folds of each (and writes
results-0,1,2.json): for a method whose run was cut short, beside the others on the same folds.

    python benchmarks/listener.py --choose --work DIR [--inner-model MODEL]

chooses the kinds' defaults (Kind.within) without the held-out songs: it measures each
candidate CHOICES on the inner split of the training songs (benchmarks/meter.py's: a ninth of
them held out by the CRC rule), with a song-rnn trained on the other eight ninths (or MODEL,
one trained so already: `python benchmarks/meter.py` keeps them) and an ngram counted on them.
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

from melodygen import corpus, kinds, store, tasks, within
from melodygen.evaluation import Measures, evaluate, folds_of
from melodygen.kinds.ngram import NGRAM
from melodygen.kinds.song_rnn import SONG_RNN
from melodygen.training import Run

ESSEN = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "essen.tar.gz"
SETS = ("essen", "chorales", "altdeu", "fink", "han")
METHODS = ("ngram", "from scratch", "fine-tuned")
FOLDS, SEED = 10, 5
CHOICES = {  # --within-tune candidates measured by --choose
    "song-rnn": ["none", "stm=0.25,bias=1", "ngram,bias=1", "ngram,bias=0,long_term=0.25",
                 "ngram,stm,bias=0", "ngram,stm,bias=1", "ngram,stm=0.5,bias=1",
                 "ngram,stm=0.35,bias=1", "ngram,stm=0.25,bias=1", "ngram,stm=0.15,bias=1",
                 "ngram=1.5,stm=0.35,bias=1", "ngram,stm=0.35,bias=1,viewpoint=token",
                 "ngram,stm=0.35,bias=1,order=16", "default,dynamic",
                 "default,cache=0.05,theta=0.1", "dynamic", "dynamic=0.01", "cache",
                 "cache=0.05,theta=0.1"],
    "ngram": ["none", "stm,bias=0", "stm,bias=0,viewpoint=token", "stm,bias=0,order=4",
              "stm=0.5,bias=0", "stm=0.35,bias=0", "stm=0.35,bias=0.5", "stm=0.25,bias=0.5",
              "stm=0.5,bias=0.5", "stm=0.25,bias=1"],
}  # fmt: skip
# Pearce 2005, pitch (cpitch) bits per note, 10-fold: the best single-viewpoint long- plus
# short-term model (Table 6.6) on 185 chorales, not the 399 here
IDYOM = {"chorales": 2.342}


def heard(label: str):
    def on_epochs(history) -> None:
        if history.valid_loss:
            print(f"  {label} epoch {history.epochs_run}: held-out loss "
                  f"{history.valid_loss[-1]:.4f} at {history.seconds:.0f} s", file=sys.stderr,
                  flush=True)  # fmt: skip

    return on_epochs


def request(songs: Path, method: str, out: Path) -> tasks.TrainRequest:
    if method == "ngram":
        return tasks.TrainRequest((songs,), NGRAM, NGRAM.spec, seed=SEED, out=out)
    if method == "from scratch":
        return tasks.TrainRequest((songs,), SONG_RNN, SONG_RNN.spec, seed=SEED, out=out)
    return tasks.TrainRequest((songs,), None, None, seed=SEED, out=out, base="essen")


# --within-tune variants measured beside none and the default: each mechanism on its own, and
# what a song-rnn's dynamic evaluation and cache add to the default
VARIANTS = {"ngram": (), "song-rnn": ("stm=0.25,bias=1", "ngram,bias=1", "dynamic",
                                      "cache=0.05,theta=0.1", "default,dynamic",
                                      "default,cache=0.05,theta=0.1")}  # fmt: skip


def measured(loaded: store.Loaded, test: list) -> dict[str, Measures]:
    """The test songs' measures without and with within-tune learning (and VARIANTS)."""
    hows = ("none", "default", *VARIANTS[loaded.meta.kind.name])
    return {how: evaluate(tasks.learning(loaded, how), test, full_song=False).overall
            for how in hows}  # fmt: skip


def cross_validated(
    songs: Path, method: str, out: Path, only: list[int] | None
) -> tuple[dict[str, Measures], float]:
    """Each fold's model (trained unless OUT/crossval.json is there), measured on its fold;
    ``only``: those folds, whose models a run cut short has written, and nothing trained."""
    start = time.perf_counter()
    if only is None and not (out / "crossval.json").is_file():
        shutil.rmtree(out, ignore_errors=True)
        tasks.crossval(request(songs, method, out), FOLDS, "none",
                       on_epochs=heard)  # fmt: skip
    seconds = time.perf_counter() - start
    read = corpus.read([songs]).songs
    fold = folds_of([corpus.file_name(s) for s in read], FOLDS, SEED)
    pooled: dict[str, Measures] = {}
    for k in range(FOLDS) if only is None else only:
        test = [s for s, f in zip(read, fold, strict=True) if f == k]
        for how, m in measured(store.load(out / f"fold-{k}"), test).items():
            pooled[how] = pooled.get(how, Measures()) + m
    return pooled, seconds


def essen_split(work: Path, method: str) -> dict[str, Measures] | None:
    """The shared split: the built-in model's held-out songs."""
    if method == "fine-tuned":
        return None  # the built-in model is the one trained on the split's songs
    essen = store.load("essen")
    held = set(essen.meta.held_out)
    test = [s for s in corpus.read([songs_of(work)]).songs if corpus.file_name(s) in held]
    if method == "from scratch":
        return measured(essen, test)
    out = work / "essen-ngram"
    if not out.is_dir():
        tasks.train(tasks.TrainRequest((songs_of(work),), NGRAM, NGRAM.spec, seed=SEED, out=out))
    return measured(store.load(out), test)


def songs_of(work: Path) -> Path:
    """The shared corpus, unpacked once into WORK/essen."""
    target = work / "essen"
    if not target.is_dir():
        with tarfile.open(ESSEN) as tar:
            tar.extractall(work / "essen-tmp", filter="data")
        (found,) = [p for p in (work / "essen-tmp").rglob("*")
                    if p.is_dir() and any(p.glob("*.txt"))]  # fmt: skip
        found.rename(target)
    return target


def data_set(work: Path, name: str) -> Path:
    """The songs of a data set in WORK/NAME: the chorales, or one Essen collection."""
    target = work / name
    if target.is_dir():
        return target
    if name == "chorales":
        tasks.write_corpus(target, "chorales")
        return target
    tmp = work / f"{name}-tmp"
    tmp.mkdir(exist_ok=True)
    for path in songs_of(work).glob(f"{name}*.txt"):
        if re.match(r"[a-z]+", path.name)[0] == name:
            shutil.copy(path, tmp / path.name)
    tmp.rename(target)
    return target


def choose(work: Path, inner_model: Path | None) -> None:
    """Each candidate of CHOICES on the inner split's held-out songs (module docstring)."""
    sys.path.insert(0, str(Path(__file__).parent))
    import meter  # the inner split, defined once

    path = inner_model or work / "inner-song-rnn"
    if not path.is_dir():
        meter.train(songs_of(work), "counters", path, True, None, False)
    loaded = store.load(path)
    held = set(loaded.meta.held_out)
    test = [s for s in corpus.read([songs_of(work)]).songs if corpus.file_name(s) in held]
    songs = list(loaded.meta.songs)
    ngram = NGRAM.fit(songs, NGRAM.spec, Run(SEED)).model  # on the songs the song-rnn learned
    print("| kind | --within-tune | bits/token | pitch bits/note | duration bits/token |")
    print("| --- | --- | --- | --- | --- |")
    for kind, model in (("song-rnn", loaded.model), ("ngram", ngram)):
        for how in CHOICES[kind]:
            learning = kinds.learning(model, within.parse(how, model.kind.within), songs)
            m = evaluate(learning, test, full_song=False).overall
            print(f"| {kind} | {how} | {m.bits_per_token:.4f} | {m.pitch_bits_per_note:.4f} | "
                  f"{m.duration_bits_per_token:.4f} |", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, help="keep the data and the models here")
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--folds", help="measure only these folds (0,1,2), training nothing")
    parser.add_argument("--choose", action="store_true", help="choose the kinds' defaults")
    parser.add_argument("--inner-model", type=Path, help="for --choose: a song-rnn trained so")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="melodygen-listener-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.choose:
            choose(work, args.inner_model)
            return
        only = [int(k) for k in args.folds.split(",")] if args.folds else None
        results_file = work / ("results.json" if only is None else f"results-{args.folds}.json")
        for name in args.sets.split(","):
            for method in args.methods.split(","):
                print(f"{name}, {method}...", file=sys.stderr, flush=True)
                if name == "essen":
                    pooled, seconds = essen_split(work, method), 0.0
                else:
                    out = work / f"{name}-{method.replace(' ', '-')}"
                    pooled, seconds = cross_validated(data_set(work, name), method, out, only)
                if pooled is None:
                    continue
                # read again: another run (another data set) may have written since
                results = json.loads(results_file.read_text()) if results_file.is_file() else {}
                results[f"{name}/{method}"] = {
                    "songs": pooled["none"].songs,
                    "seconds": seconds,
                    **{how: m.to_json() for how, m in pooled.items()},
                }
                results_file.write_text(json.dumps(results, indent=2))
                print_table(results)


def print_table(results: dict) -> None:
    print("| data set | songs | method | bits/token | pitch bits/note | with within-tune "
          "learning: bits/token | pitch bits/note | IDyOM |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for key, r in results.items():
        name, method = key.split("/")
        seen = " *" if method == "fine-tuned" and name not in ("chorales",) else ""
        figures = [f"{r[how][m]:.3f}" for how in ("none", "default")
                   for m in ("bits_per_token", "pitch_bits_per_note")]  # fmt: skip
        idyom = f"{IDYOM[name]:.3f}" if name in IDYOM else ""
        print(f"| {name} | {r['songs']:,} | {method}{seen} | {' | '.join(figures)} | {idyom} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
