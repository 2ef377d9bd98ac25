"""`melodygen compose` as a whole process against the chapter's way, side by side in one run.

The chapter's way: start Python, import Keras, load model.keras, then one model.predict per note
(50 notes after the seed). melodygen's way: `melodygen compose`, which loads the numpy weights
and never imports TensorFlow. Both run as fresh processes on the same model and seed; the
script checks that they compose the same notes and prints the median wall times and the ratio.

    python benchmarks/compose_speed.py              # trains a stateful model on nabiya first
    python benchmarks/compose_speed.py --model outputs/nabiya-stateful --runs 5

With --corpus-model (a song-rnn trained on a corpus), it also times many tunes: `melodygen
compose -n 100 --length 64 --no-end` as a process, against Keras generating tunes the way
Magenta's and the chapter's loops do, one `model.predict` per token (on --keras-tunes of them,
timed after loading: the per-token rate is what counts), and prints tokens per second of each.

    python benchmarks/compose_speed.py --corpus-model outputs/essen-song-rnn
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
from melodygen.kinds import KINDS, chapter, window
from melodygen import encoding
model_dir = Path(sys.argv[1])
meta = json.loads((model_dir / "melodygen.json").read_text())
vocab = encoding.Vocabulary(tuple(meta["vocabulary"]))
table = window.input_table(vocab, KINDS[meta["model"]].inputs)
model = chapter.load_model(model_dir / "model.keras")
seed = [vocab.index(t) for t in sys.argv[2].split(",")]
melody = chapter.continue_melody(model, table, seed, int(sys.argv[3]), meta["spec"]["window"])
print(" ".join(vocab.tokens[i] for i in melody))
"""


KERAS_SONG_LOOP = """
import sys, time
import numpy as np
from melodygen import store
from melodygen.kinds import chapter, song_rnn
loaded = store.load(sys.argv[1])
tunes, length = int(sys.argv[2]), int(sys.argv[3])
keras_model = chapter.load_model(loaded.path / "model.keras")
model, vocab = loaded.model, loaded.model.vocab
table, units = song_rnn.factored_inputs(vocab), model.spec.units
start = time.perf_counter()
for tune in range(tunes):
    rng = np.random.default_rng([7, tune + 1])
    repeats = song_rnn.Repeats(1)
    states = [np.zeros((1, units), np.float32)] * (2 * model.spec.layers)
    previous = np.array([len(vocab)])  # <start>
    for _ in range(length):
        ids = song_rnn.song_inputs(table, previous, *repeats.following())[:, None]
        ids = ids.astype(np.int32)
        logits, *states = keras_model.predict([ids, *states], verbose=0)
        logits = logits[0, -1].astype(np.float64)
        logits[[vocab.end, vocab.unknown]] = -np.inf
        p = np.exp(logits - logits.max())
        previous = np.array([rng.choice(len(p), p=p / p.sum())])
        repeats.push(previous)
print(tunes * length / (time.perf_counter() - start))
"""


def many_tunes(model: Path, tunes: int, keras_tunes: int, length: int, work: Path) -> None:
    """Tokens per second: melodygen composing ``tunes`` tunes in one process (start-up
    included), against Keras's per-token predict loop."""
    (work / "many").mkdir(exist_ok=True)
    command = [sys.executable, "-m", "melodygen", "compose", "--model", str(model), "-n",
               str(tunes), "--length", str(length), "--no-end", "--temperature", "1",
               "--random-seed", "7", "-o", str(work / "many" / "tune.mid")]  # fmt: skip
    seconds, _ = timed(command, work)
    ours = tunes * length / seconds
    keras = float(timed([sys.executable, "-c", KERAS_SONG_LOOP, str(model), str(keras_tunes),
                         str(length)], work)[1].split()[-1])  # fmt: skip
    print(f"{tunes} tunes of {length} notes from {model}:")
    print(f"melodygen compose -n {tunes} (one process, start-up included): {seconds:.2f} s, "
          f"{ours:,.0f} tokens/s")  # fmt: skip
    print(f"Keras, one model.predict per token ({keras_tunes} tunes, after loading): "
          f"{keras:,.0f} tokens/s ({tunes * length / keras:.0f} s for {tunes} tunes)")  # fmt: skip
    print(f"speed-up: {ours / keras:.1f}x")


def timed(command: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=cwd, check=True)
    return time.perf_counter() - start, proc.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="a model directory (default: train one)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--length", type=int, default=50)
    parser.add_argument("--corpus-model", type=Path, help="a song-rnn: also time 100 tunes")
    parser.add_argument("--tunes", type=int, default=100)
    parser.add_argument("--keras-tunes", type=int, default=5)
    args = parser.parse_args()
    if args.corpus_model:
        many_tunes(args.corpus_model.resolve(), args.tunes, args.keras_tunes, 64,
                   Path(tempfile.mkdtemp(prefix="compose-speed-")))  # fmt: skip
        return
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
