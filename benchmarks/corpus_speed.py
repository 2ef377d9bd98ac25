"""A song-rnn trained by Keras's own `model.fit` and by melodygen, side by side in one run.

The same model (same initial weights), the same training songs (the Essen corpus with the
default split), the same batches of songs in the same order, the same optimizer: once through
`model.fit` (whole padded songs, masked by sample weights, from a tf.data generator), once
through melodygen's loop (kinds.song_rnn.SongTrainer: one compiled step per chunk of a batch, the
state carried between chunks). For each: training tokens per second, and the held-out loss
after the same number of steps. Both are set against the machine's arithmetic limit: FLOPs per
training token times tokens per second, next to a float32 matmul rate measured in this run on
the LSTM's own shapes.

    python benchmarks/corpus_speed.py                 # two epochs each, default sizes
    python benchmarks/corpus_speed.py --songs 1500    # a part of the corpus: quicker
"""

from __future__ import annotations

import argparse
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

from melodygen import corpus, evaluation, training
from melodygen.kinds import Model
from melodygen.kinds.song_rnn import (
    SONG_RNN,
    SongSpec,
    SongTrainer,
    song_batches,
    song_data,
    song_vocabulary,
)

ESSEN = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "essen.tar.gz"


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, help="a directory of songs (default: unpack Essen)")
    parser.add_argument("--songs", type=int, help="use only the first N songs")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="melodygen-speed-"))
    try:
        if args.corpus is None:
            with tarfile.open(ESSEN) as tar:
                tar.extractall(work, filter="data")
            args.corpus = work / "essen"
        songs = corpus.read([args.corpus]).songs[: args.songs]
        train, held = corpus.split(songs, corpus.default_valid(songs))
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
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
