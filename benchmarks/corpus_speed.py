"""Time to a good model: corpus candidates trained side by side in one run, on the shared split.

For each candidate (a kind and its settings), trained from scratch on the Essen corpus's
training songs (the default split), measured on its held-out songs after each epoch: the seconds
of training (compiling included, measuring excluded) until held-out pitch bits per note first
reach 2.40, 2.30 and 2.278 (the song-rnn's best on 11-30), the best reached and when, training
tokens per second, FLOPs per training token, and that rate's share of the best float32 matrix
multiply measured in the same run. The reference row is the song-rnn as issue 10 left it
(`--units 256 --learning-rate 0.01 --decay 0.75 --batch 64 --chunk 64 --dropout 0.3`, to
its early stop).

    python benchmarks/corpus_speed.py                          # reference and default
    python benchmarks/corpus_speed.py --rows reference default transformer
    python benchmarks/corpus_speed.py --row fast=song-rnn:schedule=cosine,epochs=6 --rows fast
    python benchmarks/corpus_speed.py --inner --budget 420     # choosing: the inner split

--inner trains on the training songs less a ninth (benchmarks/meter.py's inner split) and
measures on that ninth, so that settings are chosen without the held-out songs. --budget stops
every row but the reference after that many seconds of training.

--where times the transformer row's training step on a typical batch against its parts run
alone (attention's core, the matrix products, the rest).

--fit-vs-loop compares Keras's own `model.fit` with melodygen's loop on the same song-rnn, the
same batches and initial weights (issue 10): tokens per second and the held-out loss after
--epochs epochs each.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

from melodygen import corpus, evaluation, kinds, training
from melodygen.kinds import Model
from melodygen.kinds.song_rnn import (
    SONG_RNN,
    SongSpec,
    SongTrainer,
    batches_per_epoch,
    song_batches,
    song_data,
    song_vocabulary,
)

ESSEN = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "essen.tar.gz"
TARGETS = (2.40, 2.30, 2.278)  # held-out pitch bits per note
INNER = 1 / 9  # benchmarks/meter.py's inner split
REFERENCE = (
    "song-rnn:units=256,learning_rate=0.01,decay=0.75,batch=64,chunk=64,dropout=0.3,"
    "schedule=exponential,warmup=0"
)
ROWS = {
    "reference": REFERENCE,
    "default": "song-rnn:",  # the default corpus configuration, whatever it is now
    "transformer": "song-transformer:",
}


def matmul_rate(tf, rows: int, inner: int, cols: int, seconds: float = 2.0) -> float:
    """GFLOP/s of float32 (rows, inner) @ (inner, cols), repeated inside one tf.function."""
    a = tf.random.normal((rows, inner))
    b = tf.random.normal((inner, cols))

    @tf.function
    def run(n):
        total = tf.zeros((rows, cols))
        for _ in tf.range(n):
            total += tf.matmul(a, b)
        return total

    run(tf.constant(2))
    n, spent = 8, 0.0
    while spent < seconds:
        n *= 2
        start = time.perf_counter()
        run(tf.constant(n)).numpy()
        spent = time.perf_counter() - start
    return 2 * rows * inner * cols * n / spent / 1e9


def flops_per_token(spec: SongSpec, vocab_size: int) -> float:
    """Multiply-adds of one token's forward pass, times 2 FLOPs each, times 3 for training
    (forward, and twice that backward)."""
    width, macs = spec.embedding, 0
    for _ in range(spec.layers):
        macs += 4 * spec.units * (width + spec.units)
        width = spec.units
    macs += spec.units * vocab_size
    return 2 * 3 * macs


def keras_fit(tf, keras, trainer: SongTrainer, epochs: int) -> list[float]:
    """Train trainer.model's twin with model.fit on the same batches; returns each epoch's
    seconds."""
    spec = trainer.spec
    song_model = trainer.model
    ids = keras.Input(shape=(None, 5), dtype="int32")
    zeros = keras.layers.Lambda(lambda p: keras.ops.zeros((keras.ops.shape(p)[0], spec.units)))
    states = [zeros(ids)] * (2 * spec.layers)
    logits = song_model([ids, *states])[0]
    model = keras.Model(ids, logits)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=spec.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    signature = (
        tf.TensorSpec((None, None, 5), tf.int32),
        tf.TensorSpec((None, None), tf.int32),
        tf.TensorSpec((None, None), tf.float32),
    )
    seconds = []
    for epoch in range(epochs):
        model.optimizer.learning_rate.assign(spec.learning_rate * spec.decay**epoch)
        batches = list(song_batches(trainer.seed, epoch, trainer.data, spec.batch))
        data = tf.data.Dataset.from_generator(
            lambda b=batches: iter(b),
            output_signature=signature,
        )
        start = time.perf_counter()
        model.fit(data, epochs=1, verbose=0, steps_per_epoch=len(batches))
        seconds.append(time.perf_counter() - start)
    return seconds


def melodygen_loop(trainer: SongTrainer, epochs: int) -> list[float]:
    seconds = []
    for epoch in range(epochs):
        start = time.perf_counter()
        trainer._epochs(epoch, 1, False)
        seconds.append(time.perf_counter() - start)
    return seconds


class OverBudget(Exception):
    pass


def candidate(text: str):
    """(kind, spec) from KIND:setting=value,..."""
    name, _, settings = text.partition(":")
    kind = kinds.get(name)
    values = {}
    for item in filter(None, settings.split(",")):
        key, _, value = item.partition("=")
        field = next(s for s in kind.spec.settings() if s.name == key)
        value = {int: int, float: float, bool: lambda v: v == "true"}.get(field.type, str)(value)
        values[key] = field.parse(value)
    return kind, kind.spec.replace(**values)


def trainer_flops(kind, spec, vocab_size: int, mean_length: float) -> float:
    """FLOPs of one training token: the kind's forward multiply-adds, x 2 FLOPs, x 3 (the
    backward pass costs twice the forward)."""
    if kind.name == "song-rnn":
        return flops_per_token(spec, vocab_size)
    return 2 * 3 * kind.multiply_adds(spec, vocab_size, mean_length)


def time_to_quality(label: str, kind, spec, train, held, seed: int, budget: float | None):
    """Train from scratch; returns (history, tokens per epoch, vocabulary size)."""
    histories = []

    def on_epochs(history) -> None:
        histories[:] = [history]
        if history.valid_pitch_bits:
            spent = sum(history.epoch_seconds)
            print(f"  {label} epoch {history.epochs_run}: {history.valid_pitch_bits[-1]:.4f} "
                  f"pitch bits/note at {spent:.0f} s", file=sys.stderr, flush=True)  # fmt: skip
            if budget is not None and spent >= budget:
                raise OverBudget

    try:
        trained = training.train(kind, spec, train, seed, on_epochs, valid=held)
        vocab_size = len(trained.model.vocab)
    except OverBudget:
        vocab_size = len(song_vocabulary(train, kind.specials, spec.transpose)[0])
    lengths = np.array([len(s.notes) + 1 for s in train])
    passes = batches_per_epoch(len(train), spec.batch, spec.steps) / math.ceil(
        len(train) / spec.batch
    )
    return histories[0], float(lengths.sum() * passes), vocab_size, float(lengths.mean())


def first_below(history, target: float) -> float | None:
    spent = np.cumsum(history.epoch_seconds)
    hit = [i for i, bits in enumerate(history.valid_pitch_bits) if bits <= target]
    return float(spent[hit[0]]) if hit else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, help="a directory of songs (default: unpack Essen)")
    parser.add_argument("--songs", type=int, help="use only the first N songs")
    parser.add_argument("--rows", nargs="+", default=["reference", "default"])
    parser.add_argument(
        "--row",
        action="append",
        default=[],
        metavar="NAME=KIND:SETTINGS",
        help="a candidate: e.g. fast=song-rnn:schedule=cosine,epochs=6",
    )
    parser.add_argument("--inner", action="store_true", help="choose: the inner split")
    parser.add_argument("--budget", type=float, help="seconds of training per row at most")
    parser.add_argument("--fit-vs-loop", action="store_true", help="issue 10's comparison")
    parser.add_argument("--epochs", type=int, default=2, help="with --fit-vs-loop")
    parser.add_argument(
        "--where",
        action="store_true",
        help="where the transformer row's training step spends its time",
    )
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    rows = dict(ROWS)
    rows.update(item.split("=", 1) for item in args.row)
    work = Path(tempfile.mkdtemp(prefix="melodygen-speed-"))
    try:
        if args.corpus is None:
            with tarfile.open(ESSEN) as tar:
                tar.extractall(work, filter="data")
            args.corpus = work / "essen"
        songs = corpus.read([args.corpus]).songs[: args.songs]
        train, held = corpus.split(songs, corpus.default_valid(songs))
        if args.inner:
            train, held = corpus.split(train, INNER)
        if args.fit_vs_loop:
            return fit_vs_loop(train, held, args)
        if args.where:
            return where_time_goes(*candidate(rows["transformer"]), train, args.seed)
        tf, _ = training.setup_tensorflow(single_thread=False)
        rates = {shape: matmul_rate(tf, *shape) for shape in [(64, 320, 1024), (1024, 1024, 1024)]}
        limit = max(rates.values())
        split = "the inner split of the training songs" if args.inner else "the shared split"
        print(f"{len(train):,} training songs, {len(held):,} held out ({split}); the best "
              f"float32 matmul here: {limit:.1f} GFLOP/s; seconds are of training, "
              "compiling included, measuring excluded")  # fmt: skip
        for name in args.rows:
            print(f"- {name}: {rows[name]}")
        heads = " | ".join(f"s to {t}" for t in TARGETS)
        print(f"| row | {heads} | best pitch bits/note (epoch, s) | tokens/s | MFLOP/token | "
              "GFLOP/s | of the best matmul |", flush=True)  # fmt: skip
        print("| --- " * (len(TARGETS) + 6) + "|")
        reached = {}
        for name in args.rows:  # each row printed when it is done
            kind, spec = candidate(rows[name])
            budget = None if name == "reference" else args.budget
            history, tokens, vocab_size, mean = time_to_quality(name, kind, spec, train, held,
                                                                args.seed, budget)  # fmt: skip
            hits = [first_below(history, t) for t in TARGETS]
            best = int(np.argmin(history.valid_pitch_bits))
            spent = np.cumsum(history.epoch_seconds)
            speed = tokens / history.seconds_per_epoch
            flops = trainer_flops(kind, spec, vocab_size, mean)
            achieved = speed * flops / 1e9
            cells = " | ".join("-" if h is None else f"{h:.0f}" for h in hits)
            print(f"| {name} | {cells} | {history.valid_pitch_bits[best]:.4f} ({best + 1}, "
                  f"{spent[best]:.0f}) | {speed:,.0f} | {flops / 1e6:.2f} | {achieved:.1f} | "
                  f"{achieved / limit:.0%} |", flush=True)  # fmt: skip
            reached[name] = hits[-1]
        ref = reached.get("reference")
        for name, mine in reached.items():
            if name != "reference" and ref and mine:
                print(f"{name} / reference, seconds to {TARGETS[-1]}: {mine / ref:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def timed(tf, run, *args, repeats: int = 10) -> float:
    """Milliseconds per call of a compiled function (after one call that compiles)."""
    run(*args)
    start = time.perf_counter()
    for _ in range(repeats):
        out = run(*args)
    float(tf.reduce_sum(out))
    return (time.perf_counter() - start) / repeats * 1e3


def where_time_goes(kind, spec, train, seed: int) -> None:
    """A song-transformer's training step on a typical batch (spec.batch songs of the median
    length) against its parts run alone, forward and backward: the attention core, the
    matrix products of the blocks and the output layer, and what is left (layer norms, the
    rotations, embeddings, dropout, the optimizer)."""
    tf, keras = training.setup_tensorflow(single_thread=False)
    vocab, variants = song_vocabulary(train, kind.specials, spec.transpose)
    data = song_data(variants, vocab, [], spec.replace(meter="none"))
    spec = spec.replace(meter="none")
    keras.utils.set_random_seed(seed)
    trainer = SongTrainer(kind, spec, seed, data, len(vocab), training.strategy_for(1))
    steps = int(np.median(data.lengths))
    rows = np.argsort(np.where(data.lengths >= steps, data.lengths, 10**9))[: spec.batch]
    x = np.stack([data.inputs[i][0][:steps] for i in rows])
    y = np.stack([data.targets[i][0][:steps] for i in rows])
    mask = np.ones(y.shape, np.float32)
    whole = timed(tf, lambda: trainer._step(x, y, mask, [])[0])
    b, u, h = spec.batch, spec.units, spec.heads
    q = tf.Variable(tf.random.normal((b, steps, h, u // h)))

    @tf.function
    def attention():
        with tf.GradientTape() as tape:
            out = tf.reduce_sum(keras.ops.dot_product_attention(q, q, q, is_causal=True))
        return tape.gradient(out, q)

    shapes = [(u, 3 * u), (u, u), (u, 4 * u), (4 * u, u)] * spec.layers + [(u, len(vocab))]
    weights = [tf.Variable(tf.random.normal(s)) for s in shapes]
    inputs = [tf.Variable(tf.random.normal((b * steps, s[0]))) for s in shapes]

    @tf.function
    def products():
        total = 0.0
        for a, w in zip(inputs, weights, strict=True):
            with tf.GradientTape() as tape:
                out = tf.reduce_sum(a @ w)
            total += sum(tf.reduce_sum(g) for g in tape.gradient(out, [a, w]))
        return total

    core = timed(tf, attention) * spec.layers
    dense = timed(tf, products)
    print(f"where a song-transformer's step goes ({b} songs of {steps} tokens, {spec.layers} x "
          f"{u}, {h} heads): {whole:.0f} ms a step; attention's core (QK, softmax, PV) "
          f"{core:.0f} ms ({core / whole:.0%}); the matrix products {dense:.0f} ms "
          f"({dense / whole:.0%}); the rest {whole - core - dense:.0f} ms "
          f"({(whole - core - dense) / whole:.0%})")  # fmt: skip


def fit_vs_loop(train, held, args) -> None:
    tf, keras = training.setup_tensorflow(single_thread=False)
    spec = SONG_RNN.spec.replace(epochs=args.epochs)
    vocab, variants = song_vocabulary(train, SONG_RNN.specials, spec.transpose)
    data = song_data(variants, vocab)
    tokens = int(data.lengths.sum())
    batch = spec.batch
    results = {}
    for way, run in (("model.fit", keras_fit), ("melodygen", melodygen_loop)):
        keras.utils.set_random_seed(args.seed)  # the same initial weights for both
        strategy = training.strategy_for(1)
        trainer = SongTrainer(SONG_RNN, spec, args.seed, data, len(vocab), strategy)
        seconds = (
            run(tf, keras, trainer, args.epochs)
            if way == "model.fit"
            else run(trainer, args.epochs)
        )
        weights = tuple(np.asarray(w) for w in trainer.model.get_weights())
        model = Model(SONG_RNN, spec, vocab, weights)
        loss = evaluation.evaluate(model, held, full_song=False).overall.loss
        steady = float(np.median(seconds[1:] or seconds))  # compiling is in the first
        results[way] = (tokens / steady, loss, steady)
    flops = flops_per_token(spec, len(vocab))
    shapes = [
        (batch, spec.embedding + spec.units, 4 * spec.units),  # an LSTM's gates
        (batch, spec.units, len(vocab)),  # the softmax layer
        (1024, 1024, 1024),
    ]
    rates = {shape: matmul_rate(tf, *shape) for shape in shapes}
    limit = max(rates.values())
    print(f"{len(train):,} training songs, {tokens:,} tokens per epoch (with <end>), "
          f"{len(held):,} held out; {spec.layers} x {spec.units} LSTM, embedding "
          f"{spec.embedding}, batch {batch} songs, {len(vocab)} tokens; "
          f"{flops / 1e6:.2f} MFLOP per training token; {args.epochs} epochs each, "
          "speeds from the epochs after the first (which compiles)")  # fmt: skip
    for shape, rate in rates.items():
        print(f"matmul {shape[0]}x{shape[1]} @ {shape[1]}x{shape[2]}: {rate:.1f} GFLOP/s")
    print("| way | tokens/s | s per epoch | held-out loss | GFLOP/s | of the best matmul |")
    print("| --- | --- | --- | --- | --- | --- |")
    for way, (speed, loss, seconds) in results.items():
        achieved = speed * flops / 1e9
        print(f"| {way} | {speed:,.0f} | {seconds:.1f} | {loss:.4f} | "
              f"{achieved:.1f} | {achieved / limit:.0%} |")  # fmt: skip
    ratio = results["melodygen"][0] / results["model.fit"][0]
    print(f"melodygen / model.fit: {ratio:.2f}x tokens per second")


if __name__ == "__main__":
    main()
