"""Pictures people would rather look at than read: loss curves and predictions against the song.

Each function returns PNG bytes (the caller writes them atomically); matplotlib is imported here
only, with the non-interactive Agg backend, so nothing else pays for it.
"""

from __future__ import annotations

import collections
import io
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from melodygen.notation import Note, Song, parse_token
from melodygen.theory import spell

WRONG = "#d62728"  # the chapter boxes wrong notes in red


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=100, metadata={"Software": None})
    _pyplot().close(fig)
    return out.getvalue()


def loss_plot(curves: Mapping[str, Mapping[str, Sequence[float]]], title: str) -> bytes:
    """Loss (log scale) and accuracy per epoch, one colour per model: during training (solid)
    and on the held-out songs (dashed), with the kept epoch marked."""
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for i, (name, history) in enumerate(curves.items()):
        color = f"C{i}"
        for key, ax, label in (("loss", top, name), ("accuracy", bottom, name)):
            values = history.get(key) or []
            ax.plot(range(1, len(values) + 1), values, color=color, linewidth=1, label=label)
            held = history.get(f"valid_{key}") or []
            if held:
                ax.plot(range(1, len(held) + 1), held, color=color, linewidth=1, linestyle="--",
                        label=f"{label}, held-out songs")  # fmt: skip
                best = int(np.argmin(history["valid_loss"]))
                ax.plot([best + 1], [held[best]], "o", color=color, markersize=4)
    if not any(c.get("loss") for c in curves.values()):
        top.text(0.5, 0.5, "no epochs: this model is counted, not trained", ha="center",
                 va="center", transform=top.transAxes)  # fmt: skip
    else:
        top.set_yscale("log")
        top.legend(loc="upper right", fontsize="small")
    top.set_ylabel("loss")
    top.set_title(title)
    bottom.set_ylabel("accuracy")
    bottom.set_ylim(-0.02, 1.02)
    bottom.set_xlabel("epoch")
    fig.tight_layout()
    return _png(fig)


GAP = 0.15  # beats left blank at the end of each note, so repeated notes show as separate bars


def _note(
    ax, onset: float, beats: float, pitch: int, height: float, held: bool = False, **style
) -> None:
    """One bar; ``held`` (tied into the next note) draws it to its end, joining the next."""
    from matplotlib.patches import Rectangle

    width = beats if held else max(beats - GAP, beats / 2)
    ax.add_patch(Rectangle((onset, pitch - height / 2), width, height, linewidth=0, **style))


def _label_pitches(ax, pitches: set[int], notes: Iterable[Note] = ()) -> None:
    """A tick and a name on every pitch row a note uses (and no others), named as the notes
    spell it (their most common spelling: G#4 in a tune that writes g#, not Ab4)."""
    rows = sorted(pitches) or [60]
    spellings = collections.Counter(
        (n.midi_pitch, n.letter, n.alter, n.octave) for n in notes if not n.is_rest
    )
    named: dict[int, tuple[str, int, int]] = {}
    for (pitch, *spelling), _ in spellings.most_common():
        named.setdefault(pitch, tuple(spelling))
    ax.set_yticks(rows)
    ax.set_yticklabels([_spelled(*named.get(p) or spell(p)) for p in rows])
    ax.set_ylim(rows[0] - 1.5, rows[-1] + 1.5)
    ax.grid(axis="y", color="0.93", linewidth=0.8)
    ax.set_axisbelow(True)


def _spelled(letter: str, alter: int, octave: int) -> str:
    return f"{letter.upper()}{'#' * alter if alter > 0 else 'b' * -alter}{octave}"


def prediction_plot(
    truth: Sequence[str], rows: Mapping[str, Sequence[str]], given: int, title: str
) -> bytes:
    """A piano roll per prediction over the song in grey, each predicted note at the onset of
    the note it stands for; wrong notes boxed in red, as the chapter marks them on the score."""
    return _png(prediction_figure(truth, rows, given, title))


def prediction_figure(
    truth: Sequence[str], rows: Mapping[str, Sequence[str]], given: int, title: str
):
    plt = _pyplot()
    from matplotlib.patches import Rectangle

    notes = [parse_token(t) for t in truth]
    onsets = [sum(n.beats for n in notes[:i]) for i in range(len(notes))]
    size = (max(8.0, sum(n.beats for n in notes) * 0.4), 2.6 * len(rows))
    fig, axes = plt.subplots(len(rows), 1, figsize=size, squeeze=False)
    for ax, (name, predicted) in zip(axes[:, 0], rows.items(), strict=True):
        pitches = {n.midi_pitch for n in notes if not n.is_rest}
        for onset, note in zip(onsets, notes, strict=True):
            if not note.is_rest:
                _note(ax, onset, note.beats, note.midi_pitch, 0.8, color="0.85")
        wrong = 0
        for i, (onset, token) in enumerate(zip(onsets, predicted, strict=False)):
            note = parse_token(token)
            bad = i >= given and token != truth[i]
            wrong += bad
            if note.is_rest:
                continue
            pitches.add(note.midi_pitch)
            color = "0.55" if i < given else WRONG if bad else "#1f77b4"
            _note(ax, onset, note.beats, note.midi_pitch, 0.6, color=color)
            if bad:
                box = (onset - 0.05, note.midi_pitch - 0.6)
                ax.add_patch(Rectangle(box, note.beats + 0.1, 1.2, fill=False, edgecolor=WRONG))
        ax.set_title(f"{name}: {wrong} of {len(truth) - given} wrong (red); the song in grey")
        ax.set_ylabel("pitch")
        ax.set_xlim(0, max(sum(n.beats for n in notes), 1))
        _label_pitches(ax, pitches, [*notes, *map(parse_token, predicted)])
    axes[-1, 0].set_xlabel("beats")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def piano_roll(song: Song, seed: int, title: str) -> bytes:
    """The song as a piano roll: the first ``seed`` notes (the user's) in grey, the rest in
    blue, a line at every bar of the song's meter, every used pitch named, tied notes joined."""
    return _png(piano_roll_figure(song, seed, title))


def piano_roll_figure(song: Song, seed: int, title: str):
    plt = _pyplot()
    numerator, denominator = song.time or (4, 4)
    bar = numerator * 4 / denominator
    total = sum(n.beats for n in song.notes)
    pitches = {n.midi_pitch for n in song.notes if not n.is_rest}
    span = max(pitches, default=60) - min(pitches, default=60) + 3
    fig, ax = plt.subplots(figsize=(min(max(8.0, total * 0.5), 24.0), min(2 + 0.2 * span, 14)))
    onset = 0.0
    for i, note in enumerate(song.notes):
        if not note.is_rest:
            following = song.notes[i + 1] if i + 1 < len(song.notes) else None
            held = note.tie and following is not None and following.midi_pitch == note.midi_pitch
            color = "0.6" if i < seed else "#1f77b4"
            _note(ax, onset, note.beats, note.midi_pitch, 0.7, held, color=color)
        onset += note.beats
    for line in np.arange(0, total + 1e-9, bar):
        ax.axvline(line, color="0.75", linewidth=0.8, zorder=0)
    ax.set_xlim(0, max(total, bar))
    ax.set_xlabel(f"beats (bars of {numerator}/{denominator})")
    ax.set_ylabel("pitch")
    _label_pitches(ax, pitches, song.notes)
    ax.set_title(title + (f": seed in grey, {len(song.notes) - seed} notes added" if seed else ""))
    fig.tight_layout()
    return fig
