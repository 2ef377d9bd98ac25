"""The four models on nabiya over several seeds, with the chapter's epochs: the results table.

python benchmarks/train_quality.py                       # 4 models x seeds 1-5 x 2000 epochs
python benchmarks/train_quality.py --models stateful --until-perfect
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from melodygen import encoding, evaluation, training
from melodygen.kinds import CHAPTER_KINDS, KINDS, Model, chapter, window
from melodygen.notation import read_song

NABIYA = Path(__file__).resolve().parent.parent / "songs" / "nabiya.txt"


def fit(kind, spec, seed: int, song, chapter_loop: bool):
    """Train one model; returns (numpy model, epochs run, seconds)."""
    if not chapter_loop:
        trained = training.train(kind, spec, [song], seed)
        return trained.model, trained.history.epochs_run, trained.history.seconds
    vocab = encoding.Vocabulary.from_songs([song.tokens])
    table = window.input_table(vocab, kind.inputs)
    data = window.make_dataset([[vocab.index(t) for t in song.tokens]], table, spec.window)
    _, keras = training.setup_tensorflow()
    keras.utils.set_random_seed(seed)  # the same initial weights as train()
    model = kind.build(spec, len(vocab))
    start = time.perf_counter()
    chapter.compile_model(model)
    chapter.fit(model, kind, data, spec.epochs)
    seconds = time.perf_counter() - start
    return Model(kind, spec, vocab, tuple(model.get_weights())), spec.epochs, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--models", nargs="+", default=CHAPTER_KINDS, choices=CHAPTER_KINDS)
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
            kind = KINDS[name]
            spec = kind.spec.replace(epochs=args.epochs, until_perfect=args.until_perfect)
            model, epochs_run, seconds = fit(kind, spec, seed, song, args.chapter_loop)
            m = evaluation.evaluate(model, [song]).overall
            one, full, n = m.one_step_correct, m.full_song_correct, m.predictions
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
