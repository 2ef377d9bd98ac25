"""melodygen's training loop against the chapter's, side by side in one run.

For each model: the same initial weights (same seed) trained for the same epochs on nabiya,
once the chapter's way (stateless: one fit(epochs=N); stateful: N times fit(epochs=1) then
reset_states) and once melodygen's way (training.Trainer). Prints both times, their ratio and
both accuracies (one-step, state carried, as the chapter's evaluate).

    python benchmarks/train_speed.py               # the chapter's 2000 epochs: about 15 minutes
    python benchmarks/train_speed.py --epochs 300  # shorter; compile time weighs more
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from melodygen import chapter, encoding, generation, models, training
from melodygen.notation import read_song

NABIYA = Path(__file__).resolve().parent.parent / "songs" / "nabiya.txt"


def accuracy(model, spec, vocab, tokens, window) -> float:
    table = encoding.input_table(vocab, spec.inputs)
    forward = models.Forward(spec, model.get_weights())
    prediction = generation.predict_song(forward, table, [vocab.index(t) for t in tokens], window)
    return prediction.correct("one_step") / prediction.predictions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument(
        "--models", nargs="+", default=list(models.SPECS), choices=list(models.SPECS)
    )
    args = parser.parse_args()
    tokens = read_song(NABIYA).tokens
    print(f"nabiya, {args.epochs} epochs, seed {args.seed}, 128 units")
    print(
        "| model | chapter, s | melodygen, s | speed-up | chapter accuracy | melodygen accuracy |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name in args.models:
        spec = models.SPECS[name]
        vocab = encoding.Vocabulary.from_songs([tokens])
        table = encoding.input_table(vocab, spec.inputs)
        data = training.make_dataset([[vocab.index(t) for t in tokens]], table, 4, spec)
        training.keras.utils.set_random_seed(args.seed)
        theirs = models.build(spec, len(vocab), 4, models.DEFAULT_UNITS)
        ours = models.build(spec, len(vocab), 4, models.DEFAULT_UNITS)
        ours.set_weights(theirs.get_weights())

        start = time.perf_counter()
        chapter.compile_model(theirs)
        chapter.fit(theirs, spec, data, args.epochs)
        chapter_seconds = time.perf_counter() - start

        start = time.perf_counter()
        training.Trainer(ours, spec, data, args.seed).fit(args.epochs)
        our_seconds = time.perf_counter() - start

        their_accuracy = accuracy(theirs, spec, vocab, tokens, 4)
        our_accuracy = accuracy(ours, spec, vocab, tokens, 4)
        row = [
            f"{chapter_seconds:.1f}",
            f"{our_seconds:.1f}",
            f"{chapter_seconds / our_seconds:.1f}x",
        ]
        row += [f"{their_accuracy:.0%}", f"{our_accuracy:.0%}"]
        print(f"| {name} | {' | '.join(row)} |", flush=True)


if __name__ == "__main__":
    main()
