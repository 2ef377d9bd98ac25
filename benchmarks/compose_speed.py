"""`melodygen compose` as a whole process against the chapter's way, side by side in one run.

The chapter's way: start Python, import Keras, load model.keras, then one model.predict per note
(50 notes after the seed). melodygen's way: `melodygen compose`, which loads the numpy weights
and never imports TensorFlow. Both run as fresh processes on the same model and seed; the
script checks that they compose the same notes and prints the median wall times and the ratio.

    python benchmarks/compose_speed.py              # trains a stateful model on nabiya first
    python benchmarks/compose_speed.py --model outputs/nabiya-stateful --runs 5

With --corpus-model (a built-in model's name, e.g. essen, or a song-rnn's directory), it times
many tunes instead: `melodygen compose -n 100 --length 64 --no-end --temperature 1
--random-seed 7` as one process, start-up included (the median of --runs), checks in one more
run under `python -X importtime` that the process never imports TensorFlow or Keras, and says
whether it is within the issue's 1.5 s. With --baseline SRC (a directory holding another
melodygen's package, e.g. `git archive HEAD melodygen | tar -x -C /tmp/before`) it times that
one too, interleaved with ours, prints both and the speed-up, and checks that both wrote the
same bytes. It gives each way's CPU seconds too (user and system, all threads): on a busy
machine, with numpy's BLAS kept to one thread (OPENBLAS_NUM_THREADS=1), they are near what the
wall time would be on an idle one; with two BLAS threads on a busy machine the threads wait on
each other and both figures balloon. A model directory with a model.keras is also timed
against Keras generating tunes the way Magenta's and the chapter's loops do, one
`model.predict` per token (on --keras-tunes of them, timed after loading: the per-token rate
is what counts).

    python benchmarks/compose_speed.py --corpus-model essen
    python benchmarks/compose_speed.py --corpus-model essen --baseline /tmp/before
    python benchmarks/compose_speed.py --corpus-model outputs/essen-song-rnn
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from melodygen import store

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


TARGET = 1.5  # seconds for -n 100 of 64 notes as one process (issue 22)


def many_tunes(model: str, tunes: int, keras_tunes: int, length: int, runs: int, work: Path,
               baseline: Path | None = None) -> None:  # fmt: skip
    """Seconds for ``tunes`` tunes composed by one process (start-up included), tokens per
    second, no TensorFlow; against ``baseline``'s melodygen and Keras's per-token loop."""
    # the outputs' directories, by way: "melodygen" would be imported as the package
    ways = {"ours": None, **({"baseline": baseline} if baseline else {})}
    seconds: dict[str, list[float]] = {way: [] for way in ways}
    cpu: dict[str, list[float]] = {way: [] for way in ways}
    printed: dict[str, str] = {}
    for run in range(runs):  # interleaved, so both see the same machine load
        for way, source in ways.items():
            out = work / way / f"run-{run}"
            command = [sys.executable, "-m", "melodygen", "compose", "--model", model, "-n",
                       str(tunes), "--length", str(length), "--no-end", "--temperature", "1",
                       "--random-seed", "7", "-o", str(out / "tune.mid")]  # fmt: skip
            took, printed[way], used = _run(command, work, source)
            seconds[way].append(took)
            cpu[way].append(used)
    print(f"{tunes} tunes of {length} notes from {model}, median of {runs} runs, start-up "
          f"included:")  # fmt: skip
    for way, source in ways.items():
        median = statistics.median(seconds[way])
        name = "melodygen compose" if source is None else f"baseline ({source})"
        each = ", ".join(f"{t:.2f}" for t in seconds[way])
        print(f"{name}: {median:.2f} s ({each}), {tunes * length / median:,.0f} tokens/s; "
              f"{statistics.median(cpu[way]):.2f} s of CPU")  # fmt: skip
    ours = statistics.median(seconds["ours"])
    print(f"within {TARGET} s: {'yes' if ours <= TARGET else 'NO'}")
    if baseline:
        before = statistics.median(seconds["baseline"])
        same = printed["baseline"] == printed["ours"] and all(
            a.read_bytes() == (work / "baseline" / "run-0" / a.name).read_bytes()
            for a in sorted((work / "ours" / "run-0").iterdir())
        )
        print(f"speed-up: {before / ours:.2f}x; the same tunes and MIDI bytes: {same}")
        if not same:
            sys.exit("the baseline composed different tunes")
    imported = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "melodygen", "compose", "--model", model, "-n",
         "2", "--length", "8", "--random-seed", "7"],
        capture_output=True, text=True, cwd=work, check=True,
    ).stderr  # fmt: skip
    modules = {line.split("|")[-1].strip() for line in imported.splitlines()
               if line.startswith("import time:")}  # fmt: skip
    heavy = sorted(m for m in modules if m.split(".")[0] in ("tensorflow", "keras"))
    print(f"TensorFlow or Keras imported by compose: {', '.join(heavy[:3]) or 'none'}")
    if heavy:
        sys.exit("compose imported TensorFlow")
    if model in store.built_in() or not (Path(model) / "model.keras").is_file():
        print("(no model.keras: Keras's per-token loop is not timed)")
        return
    keras = float(timed([sys.executable, "-c", KERAS_SONG_LOOP, model, str(keras_tunes),
                         str(length)], work)[1].split()[-1])  # fmt: skip
    print(f"Keras, one model.predict per token ({keras_tunes} tunes, after loading): "
          f"{keras:,.0f} tokens/s ({tunes * length / keras:.0f} s for {tunes} tunes)")  # fmt: skip
    print(f"speed-up over Keras: {tunes * length / ours / keras:.1f}x")


def timed(command: list[str], cwd: Path, source: Path | None = None) -> tuple[float, str]:
    """Seconds the command took as a process, and what it printed; with ``source``, the
    melodygen package is imported from that directory."""
    return _run(command, cwd, source)[:2]


def _run(command: list[str], cwd: Path, source: Path | None = None) -> tuple[float, str, float]:
    """(wall seconds, what it printed, CPU seconds: user and system, of all its threads)."""
    env = {**os.environ, "PYTHONPATH": str(source)} if source else None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=cwd, check=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, proc.stdout.strip(), cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="a model directory (default: train one)")
    parser.add_argument("--runs", type=int, default=None, help="default: 5, or 3 of many tunes")
    parser.add_argument("--length", type=int, default=50)
    parser.add_argument(
        "--corpus-model", help="a built-in model's name or a directory: time many tunes"
    )
    parser.add_argument("--baseline", type=Path, help="another melodygen's source to time too")
    parser.add_argument("--tunes", type=int, default=100)
    parser.add_argument("--keras-tunes", type=int, default=5)
    args = parser.parse_args()
    if args.corpus_model:
        model = args.corpus_model
        if model not in store.built_in():  # a directory, run from another working directory
            model = str(Path(model).resolve())
        baseline = args.baseline.resolve() if args.baseline else None
        many_tunes(model, args.tunes, args.keras_tunes, 64, args.runs or 3,
                   Path(tempfile.mkdtemp(prefix="compose-speed-")), baseline)  # fmt: skip
        return
    args.runs = args.runs or 5
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
