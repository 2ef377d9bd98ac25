"""One HTML page to listen to composed tunes and choose among them (`compose --html`).

The page stands alone: inline CSS and one tiny inline script, no fonts, images or requests from
elsewhere, so it works opened from disk (file://) and can be copied with the tunes' files. Each
score goes in as an ``<img>`` of a base64 ``data:`` SVG: Verovio draws its SMuFL glyphs as
paths in the SVG's own ``<defs>``, which an image keeps, and an image's ids stay its own, so
twenty scores cannot clash as inline SVGs would. The same entries give the same text.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Entry:
    """One tune on the page. URLs are relative to the page and already URL-quoted
    (``urllib.parse.quote``) where a file name needs it."""

    title: str  # "essen 3"
    svg: str | None  # its engraved score (melodygen.score.svg), None when it could not be engraved
    audio: str | None  # its WAV ("tune-03.wav"), None when no WAV could be written
    links: Sequence[tuple[str, str]] = ()  # (label, URL): ("MIDI", "tune-03.mid"), ...
    figures: Sequence[tuple[str, str]] = ()  # (label, value), formatted: ("key", "G major"), ...


NO_SCORE = "No score: this tune could not be engraved."
NO_AUDIO = (
    "No audio: no WAV could be written for this tune (melodygen plays MIDI through FluidSynth "
    "and a General MIDI SoundFont)."
)

STYLE = """
:root { color-scheme: light; }
body { margin: 0; background: #f6f6f3; color: #222;
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; }
main { max-width: 60rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
.about { margin: 0 0 1rem; color: #555; }
nav ol { display: flex; flex-wrap: wrap; gap: .25rem .5rem; margin: 0 0 1.5rem; padding: 0;
  list-style: none; font-size: .9rem; }
nav a { display: inline-block; padding: .1rem .5rem; border: 1px solid #ccd;
  border-radius: 1rem; background: #fff; text-decoration: none; }
a { color: #1b4f9c; }
section { background: #fff; border: 1px solid #ddd; border-radius: .5rem;
  padding: 1rem 1.25rem; margin: 0 0 1.25rem; }
h2 { font-size: 1.2rem; margin: 0 0 .5rem; }
h2 .number { color: #888; font-weight: normal; margin-right: .4rem; }
.score { margin: 0 0 .75rem; }
.score img { display: block; max-width: 100%; height: auto; }
.player { display: flex; align-items: center; gap: .75rem; margin: 0 0 .75rem; }
.player audio { width: 22rem; max-width: 100%; }
.duration { color: #555; font-variant-numeric: tabular-nums; }
.missing { color: #8a5a00; margin: 0 0 .75rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .1rem 1rem;
  margin: 0 0 .75rem; font-size: .95rem; }
dt { color: #666; }
dd { margin: 0; }
.links { margin: 0; padding: 0; list-style: none; display: flex; flex-wrap: wrap; gap: 1rem; }
""".strip()

# Marks each player and score once the browser has it, so a checker (benchmarks/page_check.py)
# can tell they load; shows each tune's length beside its player.
SCRIPT = """
function mark(el, ok) { el.dataset.loaded = ok ? "yes" : "error"; }
function heard(audio) {
  const ok = audio.duration > 0 && isFinite(audio.duration);
  mark(audio, ok);
  if (ok) { audio.dataset.duration = audio.duration.toFixed(2); }
  const shown = audio.parentNode.querySelector(".duration");
  if (shown) { shown.textContent = ok ? audio.duration.toFixed(1) + " s" : "could not be loaded"; }
}
for (const audio of document.querySelectorAll("audio")) {
  if (audio.error || audio.readyState >= 1) { heard(audio); }
  audio.addEventListener("loadedmetadata", () => heard(audio));
  audio.addEventListener("error", () => heard(audio));
}
function seen(img) { mark(img, img.naturalWidth > 0); }
for (const img of document.querySelectorAll(".score img")) {
  if (img.complete) { seen(img); }
  img.addEventListener("load", () => seen(img));
  img.addEventListener("error", () => seen(img));
}
""".strip()


def html(title: str, entries: Sequence[Entry], about: str = "") -> str:
    """The page: a heading, ``about``, a row of links to the tunes, then one section per tune
    (id ``tune-1`` on) with its score, player, figures and links."""
    contents = "".join(
        f'<li><a href="#tune-{n}">{n}. {escape(e.title)}</a></li>'
        for n, e in enumerate(entries, start=1)
    )
    sections = "\n".join(_section(n, e) for n, e in enumerate(entries, start=1))
    about_line = f'<p class="about">{escape(about)}</p>\n' if about else ""
    nav = f'<nav aria-label="Tunes"><ol>{contents}</ol></nav>\n' if entries else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>
{STYLE}
</style>
</head>
<body>
<main>
<h1>{escape(title)}</h1>
{about_line}{nav}{sections}
</main>
<script>
{SCRIPT}
</script>
</body>
</html>
"""


def _section(n: int, entry: Entry) -> str:
    title = escape(entry.title)
    parts = [f'<section id="tune-{n}">', f'<h2><span class="number">{n}.</span>{title}</h2>']
    if entry.svg is not None:
        parts.append(f'<div class="score">{_image(entry.svg, f"Score of {entry.title}")}</div>')
    else:
        parts.append(f'<p class="missing">{escape(NO_SCORE)}</p>')
    if entry.audio is not None:
        src = escape(_relative(entry.audio))
        parts.append(
            f'<div class="player"><audio controls preload="metadata" src="{src}" '
            f'aria-label="{escape(f"Play {entry.title}")}"></audio>'
            '<span class="duration"></span></div>'
        )
    else:
        parts.append(f'<p class="missing">{escape(NO_AUDIO)}</p>')
    if entry.figures:
        rows = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in entry.figures)
        parts.append(f"<dl>{rows}</dl>")
    if entry.links:
        items = "".join(
            f'<li><a href="{escape(_relative(url))}">{escape(label)}</a></li>'
            for label, url in entry.links
        )
        parts.append(f'<ul class="links">{items}</ul>')
    parts.append("</section>")
    return "\n".join(parts)


def _image(svg: str, alt: str) -> str:
    """The score as an image of its own: a viewBox added where the root lacks one (Verovio's
    has none), since without one some browsers crop an image to the column instead of scaling
    it down; its size given so the page does not jump while it loads."""
    root = re.search(r"<svg\b[^>]*>", svg)
    width = height = None
    if root:
        size = re.search(r'\swidth="([\d.]+)(?:px)?"\s+height="([\d.]+)(?:px)?"', root.group())
        if size:
            width, height = size.groups()
            if "viewBox" not in root.group():
                tag = root.group()[:-1].rstrip("/") + f' viewBox="0 0 {width} {height}"'
                tag += "/>" if root.group().endswith("/>") else ">"
                svg = svg[: root.start()] + tag + svg[root.end() :]
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    size_attrs = f' width="{_int(width)}" height="{_int(height)}"' if width and height else ""
    return f'<img src="data:image/svg+xml;base64,{data}" alt="{escape(alt)}"{size_attrs}>'


def _int(number: str) -> int:
    return round(float(number))


def _relative(url: str) -> str:
    """The URL, refused if it names a scheme or a host: the page must work offline, from disk."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        raise ValueError(f"{url!r}: the page links only to files beside it (relative URLs)")
    return url
