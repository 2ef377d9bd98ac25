"""Does each corpus kind train on the GPU, and how much faster than on the CPU? One short run.

For each trained corpus kind (song-rnn, song-transformer; the ngram is counted, not trained),
the same model trains for --steps batches on the GPU and then, in a fresh process that sees no
GPU (CUDA_VISIBLE_DEVICES=""), on the CPU; each prints training tokens per second, timed after
a first batch that compiles. The songs are made up here (random walks in 4/4, fixed by a seed),
so that the check needs no corpus on the GPU machine; speed does not depend on the notes.
On a machine without a GPU it says so and exits 0. Under 5 minutes.

    python benchmarks/gpu_check.py
    python benchmarks/gpu_check.py --steps 50 --batch 64

The song-rnn meets what Keras needs to run its LSTMs through cuDNN (keras.layers.LSTM's
use_cudnn="auto"): tanh and sigmoid activations, a bias, no recurrent dropout, not unrolled,
no mask (padding is weighed out by the loss instead); the check prints whether TensorFlow sees
the GPU and was built with CUDA.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

KINDS = ("song-rnn", "song-transformer")


def songs(count: int, length: int, seed: int):
    """Made-up tunes: random walks over a two-octave C major scale, in quarters and eighths."""
    import numpy as np

    from melodygen.notation import parse_song

    rng = np.random.default_rng(seed)
    scale = ["c", "d", "e", "f", "g", "a", "b", "c'", "d'", "e'", "f'", "g'", "a'", "b'"]
    out = []
    for k in range(count):
        steps = np.clip(np.cumsum(rng.integers(-2, 3, length)) + 5, 0, len(scale) - 1)
        tokens = [scale[s] + ("8" if i % 3 else "4") for i, s in enumerate(steps)]
        out.append(parse_song("time: 4/4\n" + " ".join(tokens), source=f"walk-{k}"))
    return out


def measure(kind_name: str, steps: int, batch: int) -> dict:
    """Tokens per second of ``steps`` batches of one kind, on the device melodygen's strategy
    picks (every GPU, else the CPU), timed after the first batch (which compiles)."""
    from melodygen import kinds, training
    from melodygen.kinds.song_rnn import SongTrainer, song_batches, song_data, song_vocabulary

    kind = kinds.get(kind_name)
    tf, keras = training.setup_tensorflow(single_thread=False)
    spec = kind.spec.replace(batch=batch, steps=1, transpose=(0, 0), meter="none")
    train = songs(batch * (steps + 1), 64, seed=1)
    vocab, variants = song_vocabulary(train, kind.specials, spec.transpose)
    data = song_data(variants, vocab, [], spec)
    keras.utils.set_random_seed(1)
    trainer = SongTrainer(kind, spec, 1, data, len(vocab), training.strategy_for(None))
    start, tokens = 0.0, 0
    for i, (x, y, mask) in enumerate(song_batches(1, 0, data, spec.batch)):
        if i == 1:
            start = time.perf_counter()
        trainer.batch(x, y, mask)  # its losses read back: the device has finished
        tokens += int(mask.sum()) if i else 0
    device = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
    return {"kind": kind_name, "device": device,
            "tokens_per_second": tokens / (time.perf_counter() - start)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="batches timed, after the first")
    parser.add_argument("--batch", type=int, default=64, help="songs per batch")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # a child process: one kind
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.steps, args.batch)))
        return
    from melodygen import training

    tf, _ = training.setup_tensorflow(single_thread=False)
    gpus = tf.config.list_physical_devices("GPU")
    print(f"TensorFlow {tf.__version__}, built with CUDA: {tf.test.is_built_with_cuda()}; "
          f"GPUs: {[g.name for g in gpus] or 'none'}")  # fmt: skip
    if not gpus:
        print("no GPU here: nothing to compare (pip install 'melodygen[gpu]' on a machine with "
              "an NVIDIA GPU, then run this again)")  # fmt: skip
        return
    rows = []
    for kind in KINDS:
        for device, env in (("GPU", {}), ("CPU", {"CUDA_VISIBLE_DEVICES": ""})):
            command = [sys.executable, __file__, "--measure", kind, "--steps", str(args.steps),
                       "--batch", str(args.batch)]  # fmt: skip
            proc = subprocess.run(command, capture_output=True, text=True,
                                  env={**os.environ, **env}, timeout=240)  # fmt: skip
            if proc.returncode:
                sys.exit(f"{kind} on the {device} failed:\n{proc.stderr[-3000:]}")
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(result)
            print(f"{kind} on the {result['device']}: {result['tokens_per_second']:,.0f} "
                  "training tokens per second", flush=True)  # fmt: skip
    print("| kind | GPU tokens/s | CPU tokens/s | GPU / CPU |")
    print("| --- | --- | --- | --- |")
    for gpu, cpu in zip(rows[::2], rows[1::2], strict=True):
        ratio = gpu["tokens_per_second"] / cpu["tokens_per_second"]
        print(f"| {gpu['kind']} | {gpu['tokens_per_second']:,.0f} | "
              f"{cpu['tokens_per_second']:,.0f} | {ratio:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
