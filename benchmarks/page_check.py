"""The page `melodygen compose --html` writes, as a browser shows it: opened from disk in
headless Chromium, how many of its scores drew (their images loaded, naturalWidth > 0) and how
many of its audio players loaded their WAV's metadata (a duration above 0), with a screenshot
to look at.

    python benchmarks/page_check.py out/index.html
    python benchmarks/page_check.py out/index.html --screenshot out.png --expect 20

Chromium (Debian's `chromium`, or $CHROMIUM) runs once with --dump-dom after a virtual-time
budget, by which time the page's own inline script (melodygen/page.py) has marked each image
and player data-loaded="yes" or "error" and given each player its data-duration; the script
counts those marks in the DOM Chromium prints. It prints a line such as "20 scores drawn, 20
audio players loaded, screenshot out.png" and exits non-zero when fewer than --expect of
either loaded, or (without --expect) when any on the page failed or there were none.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

WINDOW = (1280, 4000)  # the screenshot: wide as a desktop, tall enough for several tunes
BUDGET_MS = 10_000  # virtual time for the page to load its images and players' metadata


def chromium() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not found:
        sys.exit("page_check needs Chromium: apt-get install chromium (or set $CHROMIUM)")
    return found


def command(page: Path, screenshot: Path | None, profile: str, window: tuple[int, int]):
    """Chromium's command line: headless, no GPU, a fresh profile; --no-sandbox because a
    container's root cannot run the sandbox (the page is our own file). No flag loosens
    file:// access: the page must load its files as a browser opening it from disk would."""
    flags = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        "--mute-audio", f"--user-data-dir={profile}", f"--window-size={window[0]},{window[1]}",
        f"--virtual-time-budget={BUDGET_MS}", "--dump-dom",
    ]  # fmt: skip
    if screenshot is not None:
        flags.append(f"--screenshot={screenshot.resolve()}")
    return [*flags, page.resolve().as_uri()]


class _Marks(HTMLParser):
    """The tunes' sections, score images and players in the DOM, with the page script's marks."""

    def __init__(self) -> None:
        super().__init__()
        self.tunes = 0
        self.images: list[str | None] = []  # data-loaded of each <img>
        self.players: list[tuple[str | None, float]] = []  # data-loaded, data-duration

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section" and (a.get("id") or "").startswith("tune-"):
            self.tunes += 1
        elif tag == "img":
            self.images.append(a.get("data-loaded"))
        elif tag == "audio":
            try:
                duration = float(a.get("data-duration") or 0)
            except ValueError:
                duration = 0.0
            self.players.append((a.get("data-loaded"), duration))


def check(page: Path, screenshot: Path | None = None, window: tuple[int, int] = WINDOW) -> dict:
    """Opens the page in headless Chromium and counts what loaded: tunes (sections), scores
    and scores_drawn, players and players_loaded, each player's duration in seconds, and the
    screenshot written (None when none was asked for)."""
    page = Path(page)
    if not page.is_file():
        raise FileNotFoundError(page)
    if screenshot is not None:
        screenshot = Path(screenshot)
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        screenshot.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="melodygen-chromium-") as profile:
        done = subprocess.run(
            command(page, screenshot, profile, window), capture_output=True, text=True, timeout=120,
            check=False,
        )  # fmt: skip
    if done.returncode != 0 or "<html" not in done.stdout:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"chromium failed ({done.returncode}): {tail}")
    marks = _Marks()
    marks.feed(done.stdout)
    marks.close()
    if screenshot is not None and not (screenshot.is_file() and screenshot.stat().st_size):
        raise RuntimeError(f"chromium wrote no screenshot to {screenshot}")
    return {
        "tunes": marks.tunes,
        "scores": len(marks.images),
        "scores_drawn": sum(mark == "yes" for mark in marks.images),
        "players": len(marks.players),
        "players_loaded": sum(mark == "yes" and d > 0 for mark, d in marks.players),
        "durations": [d for _, d in marks.players],
        "screenshot": screenshot,
    }


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.partition("x")
    return int(width), int(height)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("page", type=Path, help="the page: out/index.html")
    parser.add_argument("--screenshot", type=Path, help="write a PNG of the page here")
    parser.add_argument("--expect", type=int, help="fail unless at least this many of each load")
    parser.add_argument("--window", type=_size, default=WINDOW, metavar="WxH",
                        help="the window: the screenshot's size (default 1280x4000)")  # fmt: skip
    args = parser.parse_args()
    found = check(args.page, args.screenshot, args.window)
    shot = f", screenshot {found['screenshot']}" if found["screenshot"] else ""
    print(f"{found['scores_drawn']} scores drawn, {found['players_loaded']} audio players "
          f"loaded{shot}")  # fmt: skip
    if args.expect is not None:
        short = min(found["scores_drawn"], found["players_loaded"]) < args.expect
        wanted = f"fewer than the {args.expect} expected"
    else:
        loaded = (found["scores_drawn"], found["players_loaded"])
        short = not found["tunes"] or loaded != (found["scores"], found["players"])
        wanted = (f"{found['scores_drawn']} of {found['scores']} scores drew and "
                  f"{found['players_loaded']} of {found['players']} players loaded")  # fmt: skip
    if short:
        sys.exit(f"page_check: {args.page}: {wanted}")


if __name__ == "__main__":
    main()
