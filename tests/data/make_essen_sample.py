"""Rebuild tests/data/essen-sample.tar.xz from the project's Essen corpus, essen.tar.gz
(public-domain folk tunes exported from the collection music21 ships): the tests' own small
corpus, so that a fresh clone tests the corpus path without the whole corpus beside it.

    python tests/data/make_essen_sample.py PATH/TO/essen.tar.gz

The sample: the first 60 tunes by file name (the tests' slice), every tune of erk5.abc (the
export test compares them with music21's), the two tunes in 116/4 and 97/32, and every tune
whose file name's Adler-32 is 7 modulo 25 (not its CRC-32, which decides the held-out split).
The archive's bytes depend on the tunes only.
"""

from __future__ import annotations

import io
import sys
import tarfile
import zlib
from pathlib import Path

OUT = Path(__file__).resolve().parent / "essen-sample.tar.xz"
ODD_METERS = ("altdeu20-0062.txt", "han2-0228.txt")  # 116/4, 97/32


def chosen(names: list[str]) -> list[str]:
    names = sorted(names)
    keep = set(names[:60]) | {n for n in names if n.startswith("erk5-")} | set(ODD_METERS)
    keep |= {n for n in names if zlib.adler32(n.encode()) % 25 == 7}
    return sorted(keep)


def main(source: str) -> None:
    with tarfile.open(source) as archive:
        members = {Path(m.name).name: m for m in archive.getmembers() if m.name.endswith(".txt")}
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w:xz", format=tarfile.PAX_FORMAT) as sample:
            for name in chosen(list(members)):
                data = archive.extractfile(members[name]).read()
                info = tarfile.TarInfo(f"essen-sample/{name}")
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                sample.addfile(info, io.BytesIO(data))
    OUT.write_bytes(out.getvalue())
    print(f"wrote {OUT}: {len(chosen(list(members)))} tunes, {len(out.getvalue()):,} bytes")


if __name__ == "__main__":
    main(sys.argv[1])
