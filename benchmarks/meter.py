"""Song-rnns told the meter, each way (--meter), and the rhythm of what they compose.

Choosing (the default): the shared corpus's training songs (the default split holds out a
tenth) are split again, a song going to the inner held-out part when the CRC-32 of its file name
is 0 mod 9, and a song-rnn with its default settings but --meter is trained on the rest for each
encoding. For each: the inner held-out measures (bits per token, pitch bits per note, duration
bits per token), and the rhythm of 100 tunes it composes (random seed 11, --across-bars: what
the model samples) beside the training songs': notes crossing a bar line, tunes lasting whole
bars, the onsets' distance. The held-out
songs of the default split are never read.

    python benchmarks/meter.py                          # none, embedding, counters, downbeat
    python benchmarks/meter.py --meters embedding none  # some of them
    python benchmarks/meter.py --final embedding        # the shared split, once, and its tunes
    python benchmarks/meter.py --model DIR              # only the rhythm of DIR's tunes

With --final, the chosen encoding is trained on all the training songs and measured once on the
held-out songs; its tunes are composed with defaults (100), and with --time 3/4 and --time 6/8
(50 each), beside the training songs of that meter; each with compose's default (--in-bars for
a model told the meter) and with --across-bars. --key trains the models told the key too.

    python benchmarks/meter.py --keys DIR...            # compose --key D, Em, Bb: 50 tunes each

--keys gives, for each model, the share of composed notes in the key's scale (a model told the
key composes in it; another's tunes are moved into it), beside the training songs' own: the
share of their notes in the scale of the key each suggests, all of them and those in that key.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

from melodygen import corpus, evaluation, generation, store, tasks
from melodygen.encoding import Start, meter_of
from melodygen.kinds.song_rnn import SONG_RNN
from melodygen.theory import parse_key

ESSEN = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "essen.tar.gz"
INNER = 1 / 9  # the inner split's share: CRC-32 of the file name 0 mod 9


def heard(label: str):
    def on_epochs(history) -> None:
        if history.valid_loss:
            print(f"  {label} epoch {history.epochs_run}: held-out loss "
                  f"{history.valid_loss[-1]:.4f} at {history.seconds:.0f} s",
                  file=sys.stderr, flush=True)  # fmt: skip

    return on_epochs


def train(songs: Path, meter: str, out: Path, inner: bool, epochs: int | None, key: bool):
    """A song-rnn on the training songs (``inner``: on the inner split of them)."""
    spec = SONG_RNN.spec.replace(meter=meter, key=key, **({"epochs": epochs} if epochs else {}))
    read = corpus.read([songs])
    train_songs, held = corpus.split(read.songs, corpus.DEFAULT_VALID)
    if inner:
        train_songs, held = corpus.split(train_songs, INNER)
    work = out.parent / f"{out.name}-songs"
    work.mkdir(parents=True, exist_ok=True)
    for song in train_songs + held:
        shutil.copy(song.source, work)
    # the held-out share that holds out exactly these songs: the same CRC rule
    request = tasks.TrainRequest((work,), SONG_RNN, spec, valid=INNER if inner else None, out=out)
    start = time.perf_counter()
    trained = tasks.train(request, on_epochs=lambda _: heard(meter))
    shutil.rmtree(work)
    return trained.report, time.perf_counter() - start


def tunes(model: Path, count: int, asked: str | None = None, key: str | None = None,
          in_bars: bool | None = None) -> list:  # fmt: skip
    """compose's tunes (in_bars None: its default; False: what the model samples)."""
    composition = tasks.compose(model, count=count, sampling=generation.Sampling(None),
                                random_seed=11, limits=generation.Limits(in_bars=in_bars),
                                header={"time": asked}, key=key)  # fmt: skip
    return [t.song for t in composition.tunes]


def key_table(models: list[Path]) -> None:
    """compose --key D, Em, Bb (50 tunes each): the share of notes in the key's scale."""
    training = list(store.load(models[0]).meta.songs)
    keys = [Start.of(song, estimate=True).key for song in training]
    own = [evaluation.in_key(s.notes, k) for s, k in zip(training, keys, strict=True)]
    print("| model | told the key | --key | in the key's scale | training songs in their "
          "own key's | training songs in that key: in its scale |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- |")
    for model in models:
        told = "key" in store.load(model).model.kind.told(store.load(model).model.spec)
        for asked in ("D", "Em", "Bb"):
            key = parse_key(asked)
            notes = [n for song in tunes(model, 50, key=asked) for n in song.notes]
            mine = [o for o, k in zip(own, keys, strict=True) if k == key]
            print(f"| {model.name} | {'yes' if told else 'no: moved'} | {asked} | "
                  f"{evaluation.in_key(notes, key):.1%} | {np.mean(own):.1%} | "
                  f"{np.mean(mine):.1%} ({len(mine)} songs) |", flush=True)  # fmt: skip


def rhythm_row(label: str, songs, reference: evaluation.Rhythm) -> str:
    r = evaluation.rhythm(songs)
    return (f"| {label} | {r.tunes} | {r.crossing_share:.2%} | {r.whole_share:.1%} | "
            f"{r.onset_distance(reference):.3f} |")  # fmt: skip


def rhythm_table(model: Path, meters: list[str | None], counts: list[int]) -> None:
    training = list(store.load(model).meta.songs)
    print("| tunes | n | notes crossing a bar line | tunes lasting whole bars | "
          "onsets' distance from the training songs' |")  # fmt: skip
    print("| --- | --- | --- | --- | --- |")
    everything = evaluation.rhythm(training)
    for asked, count in zip(meters, counts, strict=True):
        if asked is None:
            reference, songs = everything, training
        else:
            meter = tuple(map(int, asked.split("/")))
            songs = [s for s in training if meter_of(s) == meter]
            reference = evaluation.rhythm(songs)
        print(rhythm_row(f"training songs{'' if asked is None else ' in ' + asked}", songs,
                         everything), flush=True)  # fmt: skip
        for in_bars, how in ((None, ""), (False, ", --across-bars")):
            composed = tunes(model, count, asked, in_bars=in_bars)
            label = "composed" + ("" if asked is None else f", --time {asked}") + how
            print(rhythm_row(label, composed, reference), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, help="a directory of songs (default: unpack Essen)")
    parser.add_argument("--meters", nargs="+", default=["none", "embedding", "counters",
                                                         "downbeat"])  # fmt: skip
    parser.add_argument("--final", help="train this encoding on the shared split, once")
    parser.add_argument("--model", type=Path, help="only compose with this model directory")
    parser.add_argument("--epochs", type=int, help="at most (default: the song-rnn's)")
    parser.add_argument("--keep", type=Path, help="keep the model directories here")
    parser.add_argument("--key", action="store_true", help="train models told the key too")
    parser.add_argument("--keys", type=Path, nargs="+", help="only compose --key with these")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="melodygen-meter-"))
    os.environ[store.STATE_ENV] = str(work / "state")  # leave the user's latest model alone
    keep = args.keep or work
    try:
        if args.model:
            rhythm_table(args.model, [None, "3/4", "6/8"], [100, 50, 50])
            return
        if args.keys:
            key_table(args.keys)
            return
        songs = args.corpus
        if songs is None:
            with tarfile.open(ESSEN) as tar:
                tar.extractall(work, filter="data")
            songs = work / "essen"
        if args.final:
            out = keep / f"final-{args.final}{'-key' * args.key}"
            report, seconds = train(songs, args.final, out, False, args.epochs, args.key)
            v = report.validation
            print(f"--meter {args.final} on the shared split: {report.epochs_run} epochs "
                  f"(best {report.best_epoch}), {seconds:.0f} s; held-out bits/token "
                  f"{v.bits_per_token:.3f}, pitch bits/note {v.pitch_bits_per_note:.3f}, "
                  f"duration bits/token {v.duration_bits_per_token:.3f}")  # fmt: skip
            rhythm_table(out, [None, "3/4", "6/8"], [100, 50, 50])
            return
        print(
            "| --meter | epochs (best) | s | inner held-out bits/token | pitch bits/note | "
            "duration bits/token | composed: crossing | whole bars | onsets' distance |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for meter in args.meters:
            out = keep / f"inner-{meter}{'-key' * args.key}"
            report, seconds = train(songs, meter, out, True, args.epochs, args.key)
            v = report.validation
            training = list(store.load(out).meta.songs)
            composed = evaluation.rhythm(tunes(out, 100, in_bars=False))  # the model's own
            label = meter + " + key" * args.key
            print(f"| {label} | {report.epochs_run} ({report.best_epoch}) | {seconds:.0f} | "
                  f"{v.bits_per_token:.3f} | {v.pitch_bits_per_note:.3f} | "
                  f"{v.duration_bits_per_token:.3f} | {composed.crossing_share:.2%} | "
                  f"{composed.whole_share:.1%} | "
                  f"{composed.onset_distance(evaluation.rhythm(training)):.3f} |",
                  flush=True)  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
