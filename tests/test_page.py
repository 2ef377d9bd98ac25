"""The listening page (melodygen.page): real scores, MIDI and WAV files of three songs, the page
read back by the stdlib's HTML parser, then opened in headless Chromium by
benchmarks/page_check.py (where Chromium is installed) to see its scores draw and players load."""

from __future__ import annotations

import base64
import re
import shutil
import struct
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from melodygen import audio, midi, page
from melodygen.notation import read_song

ROOT = Path(__file__).resolve().parent.parent
CHECKER = ROOT / "benchmarks" / "page_check.py"
SONGS = ("nabiya", "frere_jacques", "twinkle")
ODD = " <b>&\"'</b>"  # what a title must survive: markup, an ampersand, both quotes


class Sections(HTMLParser):
    """Each tune's section as the parser sees it: its title, images, players, figures, links."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[dict] = []
        self.urls: list[str] = []  # every src and href on the page
        self.into: tuple | None = None  # (container, key) that text goes into

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.urls += [a[k] for k in ("src", "href") if a.get(k)]
        if tag == "section":
            self.sections.append({"id": a.get("id"), "title": "", "images": [], "audio": [],
                                  "figures": [], "links": [], "missing": []})  # fmt: skip
        if not self.sections:
            return
        s = self.sections[-1]
        if tag == "h2":
            self.into = (s, "title")
        elif tag == "img":
            s["images"].append(a)
        elif tag == "audio":
            s["audio"].append(a)
        elif tag in ("dt", "dd"):
            s["figures"].append([tag, ""])
            self.into = (s["figures"][-1], 1)
        elif tag == "a":
            s["links"].append([a.get("href"), ""])
            self.into = (s["links"][-1], 1)
        elif tag == "p" and "missing" in (a.get("class") or ""):
            s["missing"].append("")
            self.into = (s["missing"], -1)

    def handle_endtag(self, tag):
        if tag in ("h2", "dt", "dd", "a", "p"):
            self.into = None

    def handle_data(self, data):
        if self.into:
            container, key = self.into
            container[key] += data


def parsed(text: str) -> Sections:
    parser = Sections()
    parser.feed(text)
    parser.close()
    return parser


@pytest.fixture(scope="module")
def tunes(tmp_path_factory):
    """Three songs' files and entries, written beside the page: (folder, entries, with audio)."""
    pytest.importorskip("music21")
    pytest.importorskip("verovio")
    from melodygen import score

    out = tmp_path_factory.mktemp("page")
    entries, heard = [], True
    for n, name in enumerate(SONGS, start=1):
        song = read_song(ROOT / "songs" / f"{name}.txt")
        stem = f"tune-{n:02d}"
        svg, data = score.svg(song), midi.song_to_midi(song)
        (out / f"{stem}.svg").write_text(svg, encoding="utf-8")
        (out / f"{stem}.mid").write_bytes(data)
        wav = None
        if heard:
            try:
                (out / f"{stem}.wav").write_bytes(audio.midi_to_wav(data, None))
                wav = f"{stem}.wav"
            except audio.AudioUnavailable:
                heard = False
        title = (song.title or name) + (ODD if n == 1 else "")
        figures = [("notes", str(len(song.notes))), ("copied", f"7 notes of '{name}'")]
        links = [("MIDI", f"{stem}.mid"), ("SVG", f"{stem}.svg")]
        entries.append(page.Entry(title, svg, wav, links, figures))
    (out / "index.html").write_text(page.html("Three tunes", entries, "seed 7"), encoding="utf-8")
    return out, entries, heard


def test_the_page_has_each_tune_with_its_score_player_figures_and_files(tunes):
    out, entries, heard = tunes
    text = (out / "index.html").read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in text
    assert not re.search(r"https?://", text, re.IGNORECASE)  # nothing from the network
    assert not re.search(r"<(link|iframe|object|embed)\b|@import|url\(", text)
    assert page.html("Three tunes", entries, "seed 7") == text  # the same entries, the same text
    found = parsed(text)
    assert [s["id"] for s in found.sections] == ["tune-1", "tune-2", "tune-3"]
    for s, entry in zip(found.sections, entries, strict=True):
        assert s["title"] == f"{s['id'][5:]}.{entry.title}"  # its number, then its title
        (img,) = s["images"]
        assert img["alt"] == f"Score of {entry.title}"
        prefix = "data:image/svg+xml;base64,"
        assert img["src"].startswith(prefix)
        svg = base64.b64decode(img["src"][len(prefix) :]).decode("utf-8")
        (verovio_id,) = re.findall(r'<svg [^>]*\bid="([^"]+)"', entry.svg)[:1]
        assert f'id="{verovio_id}"' in svg and "viewBox=" in svg.split(">", 1)[0]
        assert (int(img["width"]), int(img["height"])) > (100, 50)
        if heard:
            (player,) = s["audio"]
            assert player["preload"] == "metadata" and "controls" in player
            assert (out / player["src"]).stat().st_size > 10_000
        else:
            assert not s["audio"] and "No audio" in s["missing"][0]
        assert s["figures"] == [[t, v] for k, v in entry.figures for t, v in (("dt", k), ("dd", v))]
        assert [label for _, label in s["links"]] == ["MIDI", "SVG"]
        for href, _ in s["links"]:
            assert (out / href).is_file()
    nav = [u for u in found.urls if u.startswith("#")]
    assert nav == ["#tune-1", "#tune-2", "#tune-3"]
    # the odd title: escaped in the text, read back whole; Korean left as UTF-8
    assert "나비야 (Butterfly) &lt;b&gt;&amp;&quot;&#x27;&lt;/b&gt;" in text
    assert "<b>&" not in text


def test_a_tune_without_score_or_audio_says_so_and_urls_stay_local():
    text = page.html("t", [page.Entry("only notes", None, None, [("MIDI", "a b.mid")], [])])
    (section,) = parsed(text).sections
    assert not section["images"] and not section["audio"] and not section["figures"]
    assert section["missing"] == [page.NO_SCORE, page.NO_AUDIO]
    assert section["links"] == [["a b.mid", "MIDI"]]
    for url in ("http://example.com/a.wav", "//host/a.wav", "file:///etc/passwd"):
        with pytest.raises(ValueError, match="relative"):
            page.html("t", [page.Entry("x", None, url, [], [])])
    assert "<nav" not in page.html("nothing yet", [])


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Chromium")
def test_chromium_draws_every_score_and_loads_every_player(tunes, tmp_path):
    out, entries, heard = tunes
    shot = tmp_path / "shot.png"
    run = subprocess.run(
        [sys.executable, CHECKER, out / "index.html", "--screenshot", shot, "--expect", "3"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    players = 3 if heard else 0
    assert run.stdout.startswith(f"3 scores drawn, {players} audio players loaded, screenshot")
    assert run.returncode == (0 if heard else 1), run.stderr
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (1280, 4000)  # IHDR: the window's size
    # a page whose second score is broken and whose third WAV is missing fails the check
    broken = [entries[0], page.Entry("bad", "<svg", entries[1].audio, (), ()),
              page.Entry("gone", entries[2].svg, "missing.wav", (), ())]  # fmt: skip
    (out / "broken.html").write_text(page.html("Broken", broken), encoding="utf-8")
    run = subprocess.run([sys.executable, CHECKER, out / "broken.html"], capture_output=True,
                         text=True, timeout=120, check=False)  # fmt: skip
    assert run.returncode == 1
    assert run.stdout.startswith(f"2 scores drawn, {2 if heard else 0} audio players loaded")


def test_compose_html_writes_every_tune_and_a_page_that_links_them(cli, tmp_path):
    pytest.importorskip("verovio")
    model = ROOT / "tests" / "data" / "models" / "ngram"
    args = ("compose", "--model", model, "-n", "3", "--random-seed", "2", "--html", "out/i.html")
    result = cli(*map(str, args))
    assert result.exit_code in (0, 1), result.output  # 1: no FluidSynth, said in one line
    parser = Sections()
    parser.feed((tmp_path / "out" / "i.html").read_text(encoding="utf-8"))
    assert [s["id"] for s in parser.sections] == [f"tune-{k}" for k in range(1, 4)]
    for k, section in enumerate(parser.sections, start=1):
        assert section["images"] and [a["src"] for a in section["audio"]] == (
            [f"tune-{k}.wav"] if result.exit_code == 0 else []
        )
    local = [u for u in parser.urls if not u.startswith(("data:", "#"))]
    assert {Path(u).suffix for u in local} >= {".mid", ".musicxml", ".abc"}
    assert all((tmp_path / "out" / u).is_file() for u in local)  # every link is a file beside it
    if shutil.which("chromium") and result.exit_code == 0:
        check = [sys.executable, CHECKER, tmp_path / "out" / "i.html", "--expect", "3"]
        run = subprocess.run(check, capture_output=True, text=True, timeout=120, check=False)
        assert run.returncode == 0 and run.stdout.startswith("3 scores drawn, 3 audio players")
