"""`melodygen compose` as a whole process against the chapter's way, side by side in one run.

The chapter's way: start Python, import Keras, load model.keras, then one model.predict per note
(50 notes after the seed). melodygen's way: `melodygen compose`, which loads the numpy weights
and never imports TensorFlow. Both run as fresh processes on the same model and seed; the
script checks that they compose the same notes and prints the median wall times and the ratio.

    python benchmarks/compose_speed.py              # trains a stateful model on nabiya first
    python benchmarks/compose_speed.py --model outputs/nabiya-stateful --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = "g8,e8,e4,f8"
CHAPTER_WAY = """
import json, sys
from pathlib import Path
import numpy as np
from melodygen import chapter, encoding
model_dir = Path(sys.argv[1])
meta = json.loads((model_dir / "melodygen.json").read_text())
vocab = encoding.Vocabulary(tuple(meta["vocabulary"]))
table = encoding.input_table(vocab, meta["inputs"])
model = chapter.load_model(model_dir / "model.keras")
seed = [vocab.index(t) for t in sys.argv[2].split(",")]
melody = chapter.continue_melody(model, table, seed, int(sys.argv[3]), meta["window"])
print(" ".join(vocab.tokens[i] for i in melody))
"""


def timed(command: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=cwd, check=True)
    return time.perf_counter() - start, proc.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="a model directory (default: train one)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--length", type=int, default=50)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="compose-speed-"))
    model = args.model.resolve() if args.model else work / "nabiya-stateful"
    if not args.model:
        print("training a stateful model on nabiya (--until-perfect)...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "melodygen", "train", str(ROOT / "songs" / "nabiya.txt"),
             "--until-perfect", "--out", str(model)],
            check=True, cwd=work, capture_output=True,
        )  # fmt: skip
    ours_cmd = [sys.executable, "-m", "melodygen", "compose", "--seed", SEED, "--model", str(model),
                "--length", str(args.length), "-o", str(work / "out.mid")]  # fmt: skip
    theirs_cmd = [sys.executable, "-c", CHAPTER_WAY, str(model), SEED, str(args.length)]
    ours, theirs = [], []
    for _ in range(args.runs):  # interleaved, so both see the same machine load
        seconds, our_tokens = timed(ours_cmd, work)
        ours.append(seconds)
        seconds, their_tokens = timed(theirs_cmd, work)
        theirs.append(seconds)
    if our_tokens != their_tokens:
        sys.exit(f"the two ways composed different notes:\n{our_tokens}\n{their_tokens}")
    mine, chapter = statistics.median(ours), statistics.median(theirs)
    print(f"model {model}, seed {SEED}, {args.length} notes, median of {args.runs} runs")
    print(f"chapter's way (keras load + predict per note): {chapter:.2f} s")
    print(f"melodygen compose (numpy, no TensorFlow):      {mine:.2f} s")
    print(f"speed-up: {chapter / mine:.1f}x; both composed: {our_tokens}")


if __name__ == "__main__":
    main()
