"""melodygen's training loop against the chapter's, side by side in one run.

For each model: the same initial weights (same seed) trained for the same epochs on nabiya,
once the chapter's way (stateless: one fit(epochs=N); stateful: N times fit(epochs=1) then
reset_states) and once melodygen's way (kinds.window.Trainer). Prints both times, their ratio and
both accuracies (one-step, state carried, as the chapter's evaluate).

    python benchmarks/train_speed.py               # the chapter's 2000 epochs: about 15 minutes
    python benchmarks/train_speed.py --epochs 300  # shorter; compile time weighs more
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from melodygen import encoding, evaluation, training
from melodygen.kinds import CHAPTER_KINDS, KINDS, Model, chapter, window
from melodygen.notation import parse_song, read_song

NABIYA = Path(__file__).resolve().parent.parent / "songs" / "nabiya.txt"


def accuracy(keras_model, kind, vocab, tokens) -> float:
    weights = tuple(keras_model.get_weights())
    model = Model(kind, kind.spec, vocab, weights)
    return evaluation.evaluate(model, [parse_song(" ".join(tokens))]).overall.accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--models", nargs="+", default=CHAPTER_KINDS, choices=CHAPTER_KINDS)
    args = parser.parse_args()
    tokens = read_song(NABIYA).tokens
    print(f"nabiya, {args.epochs} epochs, seed {args.seed}, 128 units")
    print(
        "| model | chapter, s | melodygen, s | speed-up | chapter accuracy | melodygen accuracy |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    _, keras = training.setup_tensorflow()
    for name in args.models:
        kind = KINDS[name]
        vocab = encoding.Vocabulary.from_songs([tokens])
        table = window.input_table(vocab, kind.inputs)
        data = window.make_dataset([[vocab.index(t) for t in tokens]], table, kind.spec.window)
        keras.utils.set_random_seed(args.seed)
        theirs = kind.build(kind.spec, len(vocab))
        ours = kind.build(kind.spec, len(vocab))
        ours.set_weights(theirs.get_weights())

        start = time.perf_counter()
        chapter.compile_model(theirs)
        chapter.fit(theirs, kind, data, args.epochs)
        chapter_seconds = time.perf_counter() - start

        start = time.perf_counter()
        window.Trainer(ours, kind, data, kind.spec, args.seed).fit(args.epochs)
        our_seconds = time.perf_counter() - start

        their_accuracy = accuracy(theirs, kind, vocab, tokens)
        our_accuracy = accuracy(ours, kind, vocab, tokens)
        row = [
            f"{chapter_seconds:.1f}",
            f"{our_seconds:.1f}",
            f"{chapter_seconds / our_seconds:.1f}x",
        ]
        row += [f"{their_accuracy:.0%}", f"{our_accuracy:.0%}"]
        print(f"| {name} | {' | '.join(row)} |", flush=True)


if __name__ == "__main__":
    main()
