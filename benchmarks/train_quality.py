"""The four models on nabiya over several seeds, with the chapter's epochs: the results table.

python benchmarks/train_quality.py                       # 4 models x seeds 1-5 x 2000 epochs
python benchmarks/train_quality.py --models stateful --until-perfect
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from melodygen import chapter, encoding, generation, models, training
from melodygen.notation import read_song

NABIYA = Path(__file__).resolve().parent.parent / "songs" / "nabiya.txt"


def fit(config: training.TrainConfig, song, chapter_loop: bool):
    """Train one model; returns (weights, vocabulary, epochs run, seconds)."""
    if not chapter_loop:
        trained = training.train([song], config)
        return trained.weights, trained.vocab, trained.history.epochs_run, trained.history.seconds
    spec = config.spec
    vocab = encoding.Vocabulary.from_songs([song.tokens])
    table = encoding.input_table(vocab, spec.inputs)
    data = training.make_dataset([[vocab.index(t) for t in song.tokens]], table, 4, spec)
    training.keras.utils.set_random_seed(config.seed)  # the same initial weights as train()
    model = models.build(spec, len(vocab), config.window, config.units)
    start = time.perf_counter()
    chapter.compile_model(model)
    chapter.fit(model, spec, data, config.epochs)
    return model.get_weights(), vocab, config.epochs, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument(
        "--models", nargs="+", default=list(models.SPECS), choices=list(models.SPECS)
    )
    parser.add_argument("--until-perfect", action="store_true")
    parser.add_argument(
        "--chapter-loop",
        action="store_true",
        help="train with the chapter's own fit loop instead (same initial weights): a control",
    )
    args = parser.parse_args()
    song = read_song(NABIYA)
    print("| model | seed | epochs | accuracy | one-step | full song | seconds |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    summary = {}
    for name in args.models:
        for seed in args.seeds:
            config = training.TrainConfig(
                name, epochs=args.epochs, seed=seed, until_perfect=args.until_perfect
            )
            weights, vocab, epochs_run, seconds = fit(config, song, args.chapter_loop)
            spec = config.spec
            table = encoding.input_table(vocab, spec.inputs)
            indices = [vocab.index(t) for t in song.tokens]
            p = generation.predict_song(models.Forward(spec, weights), table, indices, 4)
            one, full, n = p.correct("one_step"), p.correct("full_song"), p.predictions
            summary.setdefault(name, []).append((one == n, full == n))
            whole = "the whole song" if full == n else f"{full} of {n}"
            row = [
                name,
                seed,
                epochs_run,
                f"{one / n:.2%}",
                f"{one} of {n}",
                whole,
                f"{seconds:.1f}",
            ]
            print(f"| {' | '.join(map(str, row))} |", flush=True)
    for name, runs in summary.items():
        print(
            f"{name}: 100% in {sum(a for a, _ in runs)} of {len(runs)} seeds, "
            f"whole song in {sum(f for _, f in runs)} of {len(runs)}"
        )


if __name__ == "__main__":
    main()
