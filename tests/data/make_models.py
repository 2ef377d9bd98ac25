"""Rebuild tests/data/models/: one tiny model directory of each kind, as the melodygen of the
commit named in models/MADE_BY wrote it, and what that melodygen composed with each (with the
options in models/compose.json), so that tests can check that every model directory a release
wrote still loads and composes the same bytes (tests/test_kinds.py). Only the command line is
used, so the script runs on any release.

    python tests/data/make_models.py

Each model keeps the files loading reads (melodygen.json, weights.npz, model.keras); the
chapter's four are trained as the tests' session models are (compare nabiya, 3 epochs, 8 units),
song-rnn and ngram on the tests' corpus slice as test_song_rnn and test_compose train them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
OUT = HERE / "models"
KEPT = ("melodygen.json", "weights.npz", "model.keras")
CHAPTER = ("mlp", "lstm", "stateful", "stateful-features")
# what each kind composes: a seed and argmax for the chapter's kinds, sampling for all
COMPOSE = {
    **{
        kind: [["--seed", "g8,e8,e4,f8"], ["--seed", "g8,e8,e4,f8", "--temperature", "1"]]
        for kind in CHAPTER
    },
    "ngram": [["--length", "40"], ["--beam", "3", "--length", "20"]],
    "song-rnn": [["--length", "40"], ["--temperature", "0.7", "--top-k", "5"]],
}


def melodygen(*args, cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "melodygen", *map(str, args)]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr}")
    return done


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["MELODYGEN_STATE"] = str(work / "state")
        with tarfile.open(HERE / "essen-sample.tar.xz") as archive:
            archive.extractall(work, filter="data")
        corpus = work / "slice"
        corpus.mkdir()
        for path in sorted((work / "essen-sample").iterdir())[:60]:
            shutil.copy(path, corpus)
        melodygen("compare", ROOT / "songs" / "nabiya.txt", "--epochs", "3", "--units", "8",
                  "-o", work / "compare", cwd=work)  # fmt: skip
        made = {kind: work / "compare" / kind for kind in CHAPTER}
        melodygen("train", corpus, "--model", "ngram", "-o", work / "ngram", cwd=work)
        melodygen("train", corpus, "--model", "song-rnn", "--units", "16", "--embedding", "8",
                  "--layers", "2", "--epochs", "2", "--batch", "8", "--random-seed", "3",
                  "--transpose", "-2..2", "--dropout", "0.2", "-o", work / "song-rnn",
                  cwd=work)  # fmt: skip
        made |= {"ngram": work / "ngram", "song-rnn": work / "song-rnn"}
        if OUT.exists():
            shutil.rmtree(OUT)
        for kind, path in made.items():
            (OUT / kind).mkdir(parents=True)
            for name in KEPT:
                if (path / name).exists():
                    shutil.copy(path / name, OUT / kind / name)
            for i, options in enumerate(COMPOSE[kind], 1):
                midi = OUT / f"{kind}-{i}.mid"
                done = melodygen("compose", "--model", OUT / kind, "--random-seed", "1",
                                 *options, "-o", midi, cwd=work)  # fmt: skip
                (OUT / f"{kind}-{i}.txt").write_text(done.stdout)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout  # fmt: skip
    (OUT / "MADE_BY").write_text(f"melodygen at commit {commit}")
    (OUT / "compose.json").write_text(json.dumps(COMPOSE, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
