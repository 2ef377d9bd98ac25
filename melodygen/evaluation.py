"""Evaluating a model against songs: the measures, defined once, and a tune's style figures.

For every token of every song, the first included, the model gives P(token | the tokens before
it in the song) (a window model sees a start-of-song context for the first ones: kinds/window.py).
From these:

- ``accuracy``: the share of predicted tokens that are the likeliest song token. A window
  model's predictions count from the song's first full window on (the chapter's one-step
  windows); a whole-song model's from the first token.
- ``bits_per_token``: the mean of -log2 P(token) over every token.
- ``pitch_bits_per_note``: the mean over every note (rests stay in the context) of -log2 of
  the probability of its pitch: P summed over the tokens of that MIDI pitch, divided by P
  summed over all note tokens.
- ``duration_bits_per_token``: likewise for the length (duration and dots) of every token,
  rests included, over all note and rest tokens.
- ``loss``: the mean over predicted tokens of -ln P(target), the target being ``<unk>`` for an
  unseen token: the cross-entropy training minimizes, for validation curves and early stopping.

No token is skipped. One the model never saw is scored as ``<unk>`` spread evenly over the
notation's sounds (encoding.SOUNDS): P(token) = P(<unk>) / SOUNDS, and ``<unk>`` adds
P(<unk>) / 129 to every pitch (and to the rest) and P(<unk>) / 72 to every written length. It is
never counted as predicted right.

The same functions serve ``train`` (report.json), ``evaluate``, ``compare`` and the benchmarks.

Rhythm, of any set of songs (``rhythm``), so that composed tunes and corpus tunes compare:

- ``crossing_share``: the share of notes (rests are not counted) that sound past the end of
  the bar they start in. A song's bar lines fall where its notes fit them best
  (encoding.Start.of): the notation writes no pickup, so a tune that starts with one has its
  bar lines where a musician hears them, not at its first note.
- ``whole_share``: the share of tunes whose length is a whole number of bars; a pickup and a
  last bar that complete each other count as whole, as folk tunes are written.
- ``onset_distance``: the total variation distance (0 the same, 1 nothing in common) between
  where the notes of some songs start in their bars (in encoding.POSITIONS places) and where a
  reference's notes do, meter by meter, weighted by the songs' notes in each meter.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

import numpy as np

from melodygen.encoding import PITCH_CLASSES, POSITIONS, SOUNDS, Start, Vocabulary, times
from melodygen.notation import LENGTH_CLASSES, Note, Song
from melodygen.theory import bar_positions, crossing, key_for_people, key_on, pitch_name, scale_of

if TYPE_CHECKING:
    from melodygen.kinds.base import Model

BATCH = 256  # songs evaluated side by side through the numpy forward pass
TOKENS = 16_384  # at most, songs x their longest: long songs go fewer at a time (a
# transformer's key/value caches grow with both: 1.7 GB for the Essen tunes' longest, before)


def finite(value):
    """JSON has no NaN: a mean over nothing is None."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


@dataclass(frozen=True)
class Measures:
    """Counts and sums over some songs; the means are properties, so measures add up."""

    songs: int = 0
    tokens: int = 0
    notes: int = 0
    predictions: int = 0  # tokens predicted from a full context (accuracy's denominator)
    one_step_correct: int = 0  # of those, predicted right with the true tokens before them
    full_song_correct: int = 0  # of those, right when the model continues its own predictions
    token_bits: float = 0.0  # sum over tokens of -log2 P(token)
    pitch_bits: float = 0.0  # sum over notes of -log2 P(pitch)
    duration_bits: float = 0.0  # sum over tokens of -log2 P(length)
    loss_sum: float = 0.0  # sum over predicted tokens of -ln P(target)
    unseen_tokens: int = 0  # tokens the model never saw in training
    unseen_pitches: int = 0  # notes whose pitch no vocabulary token has

    def __add__(self, other: Measures) -> Measures:
        return Measures(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def accuracy(self) -> float:
        return self.one_step_correct / self.predictions if self.predictions else math.nan

    @property
    def bits_per_token(self) -> float:
        return self.token_bits / self.tokens if self.tokens else math.nan

    @property
    def pitch_bits_per_note(self) -> float:
        return self.pitch_bits / self.notes if self.notes else math.nan

    @property
    def duration_bits_per_token(self) -> float:
        return self.duration_bits / self.tokens if self.tokens else math.nan

    @property
    def loss(self) -> float:
        return self.loss_sum / self.predictions if self.predictions else math.nan

    @property
    def full_song_reproduced(self) -> bool:
        return self.full_song_correct == self.predictions

    def to_json(self) -> dict:
        """The means (None where there is nothing to average) and the counts."""
        return {
            k: finite(v)
            for k, v in {
                "accuracy": self.accuracy,
                "bits_per_token": self.bits_per_token,
                "pitch_bits_per_note": self.pitch_bits_per_note,
                "duration_bits_per_token": self.duration_bits_per_token,
                "loss": self.loss,
                "songs": self.songs,
                "tokens": self.tokens,
                "notes": self.notes,
                "predictions": self.predictions,
                "one_step_correct": self.one_step_correct,
                "full_song_correct": self.full_song_correct,
                "unseen_tokens": self.unseen_tokens,
                "unseen_pitches": self.unseen_pitches,
            }.items()
        }


@dataclass(frozen=True)
class SongEvaluation:
    """One song against the model: measures and the aligned predictions (vocabulary indices).

    ``one_step`` and ``full_song`` start with the song's first ``given`` tokens, copied, so
    they align token for token with ``truth``.
    """

    song: Song
    truth: list[int]
    one_step: list[int]
    full_song: list[int]
    given: int  # tokens given before the predictions count (Kind.given)
    measures: Measures
    # per token: its information content and its pitch's (NaN for a rest), in bits, and the
    # entropies of the distributions they come from (per_note's last four columns)
    information: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))

    def tokens(self, mode: str, vocab: Vocabulary) -> list[str]:
        """A prediction ("one_step" or "full_song") as tokens: the song's own ``given``
        tokens, then the predicted song tokens."""
        predicted = getattr(self, mode)[self.given :]
        return self.song.tokens[: self.given] + [vocab.tokens[i] for i in predicted]


@dataclass(frozen=True)
class Evaluation:
    songs: list[SongEvaluation]

    @property
    def overall(self) -> Measures:
        return sum((s.measures for s in self.songs), Measures())


REST = PITCH_CLASSES - 1  # the pitch column of rests


def _classes(vocab: Vocabulary) -> tuple[np.ndarray, np.ndarray]:
    """The pitch column (0-127, REST for a rest) and length class of each vocabulary entry;
    -1 for the specials."""
    pitch = np.full(len(vocab), -1)
    length = np.full(len(vocab), -1)
    for i, note in enumerate(vocab.notes):
        pitch[i] = REST if note.is_rest else note.midi_pitch
        length[i] = note.length_class
    return pitch, length


def _class_bits(
    p: np.ndarray,
    of: np.ndarray,
    target: np.ndarray,
    among: np.ndarray,
    unknown: np.ndarray,
    share: float,
    among_share: float,
) -> np.ndarray:
    """-log2 of P(the target's class) / P(any class in ``among``): p (B, V) probabilities,
    ``of`` (V,) each entry's class, target (B,) classes; <unk>'s probability ``unknown`` (B,)
    adds ``share`` to every class and ``among_share`` to the total."""
    chosen = (p * (of[None, :] == target[:, None])).sum(1) + unknown * share
    total = p @ among + unknown * among_share
    with np.errstate(divide="ignore", invalid="ignore"):  # padding: left out by the caller
        return -np.log2(chosen / total)


def _entropies(
    p: np.ndarray, log_p: np.ndarray, unknown: np.ndarray, unk: int | None, pitches: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The entropies in bits of the next token's distribution (<unk> spread evenly over the
    SOUNDS it stands for, as the token's information content counts it) and of its pitch's,
    given that it is a note (``pitches``: (V, 128), each note entry's MIDI pitch)."""
    plogp = p * log_p
    if unk is not None:
        plogp[:, unk] = 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.where(unknown > 0, unknown * (np.log(unknown) - math.log(SOUNDS)), 0.0)
        q = p @ pitches + unknown[:, None] / PITCH_CLASSES
        q /= q.sum(1, keepdims=True)
        pitch = -np.where(q > 0, q * np.log2(q), 0.0).sum(1)
    return -(plogp.sum(1) + spread) / math.log(2), pitch


def _pitch(note: Note) -> int:
    return REST if note.is_rest else note.midi_pitch  # type: ignore[return-value]


def _batch(model: Model, songs: Sequence[Song], full_song: bool) -> list[SongEvaluation]:
    """Songs side by side: one-step log-probabilities over the true tokens, then the full-song
    continuation from each song's ``given`` tokens (Kind.given)."""
    given, vocab = model.given, model.vocab
    tokens = vocab.song_tokens  # predictions are song tokens: never <end> or <unk>
    pitch_of, length_of = _classes(vocab)
    is_note = ((pitch_of >= 0) & (pitch_of != REST)).astype(float)
    is_sound = (pitch_of >= 0).astype(float)
    pitches = np.zeros((len(vocab), REST))  # each note entry's MIDI pitch, one-hot
    notes = np.flatnonzero((pitch_of >= 0) & (pitch_of != REST))
    pitches[notes, pitch_of[notes]] = 1.0
    known_pitches = {n.midi_pitch for n in vocab.notes if not n.is_rest}
    truth = [vocab.encode(s.tokens) for s in songs]
    n = np.array([len(t) for t in truth])
    shape = (len(songs), n.max())
    target, pitch, length = (np.zeros(shape, np.int64) for _ in range(3))
    unseen = np.zeros(shape, bool)
    for i, song in enumerate(songs):
        k = n[i]
        target[i, :k] = truth[i]
        pitch[i, :k] = [_pitch(note) for note in song.notes]
        length[i, :k] = [note.length_class for note in song.notes]
        unseen[i, :k] = [vocab.get(t) is None for t in song.tokens]
    rows = np.arange(len(songs))
    nats, pitch_bits, duration_bits, entropy, pitch_entropy = (np.zeros(shape) for _ in range(5))
    best = np.zeros(shape, np.int64)
    predictor = model.predictor()
    starts = [Start.of(song) for song in songs]  # a key only from a key: header
    log_probs = predictor.reset(len(songs), starts)
    for t in range(shape[1]):
        p = np.exp(log_probs)
        unknown = p[:, vocab.unknown] if vocab.unknown is not None else np.zeros(len(p))
        nats[:, t] = -log_probs[rows, target[:, t]]
        # <unk> adds 1/129 of its probability to each pitch (and the rest), 1/72 to each length
        pitch_bits[:, t] = _class_bits(
            p, pitch_of, pitch[:, t], is_note, unknown, 1 / PITCH_CLASSES, REST / PITCH_CLASSES
        )
        duration_bits[:, t] = _class_bits(
            p, length_of, length[:, t], is_sound, unknown, 1 / len(LENGTH_CLASSES), 1.0
        )
        entropy[:, t], pitch_entropy[:, t] = _entropies(p, log_probs, unknown, vocab.unknown,
                                                        pitches)  # fmt: skip
        best[:, t] = log_probs[:, :tokens].argmax(1)
        log_probs = predictor.feed(target[:, t])

    full = target.copy()
    if full_song:
        log_probs = predictor.reset(len(songs), starts)
        for t in range(shape[1]):
            if t >= given:
                full[:, t] = log_probs[:, :tokens].argmax(1)
            log_probs = predictor.feed(full[:, t])

    token_bits = nats / math.log(2) + unseen * math.log2(SOUNDS)
    results = []
    for i, song in enumerate(songs):
        k = n[i]
        is_note = pitch[i, :k] != REST
        counted = slice(given, k)
        known = ~unseen[i, counted]
        right = (target[i, counted] == best[i, counted]) & known
        measures = Measures(
            songs=1,
            tokens=int(k),
            notes=int(is_note.sum()),
            predictions=max(int(k) - given, 0),
            one_step_correct=int(right.sum()),
            full_song_correct=int(((full[i, counted] == target[i, counted]) & known).sum()),
            token_bits=float(token_bits[i, :k].sum()),
            pitch_bits=float(pitch_bits[i, :k][is_note].sum()),
            duration_bits=float(duration_bits[i, :k].sum()),
            loss_sum=float(nats[i, counted].sum()),
            unseen_tokens=int(unseen[i, :k].sum()),
            unseen_pitches=int(sum(p not in known_pitches for p in pitch[i, :k][is_note])),
        )
        one_step = truth[i][:given] + best[i, given:k].tolist()
        information = np.stack([token_bits[i, :k], np.where(is_note, pitch_bits[i, :k], np.nan),
                                entropy[i, :k], pitch_entropy[i, :k]], 1)  # fmt: skip
        results.append(SongEvaluation(song, truth[i], one_step, full[i, :k].tolist(), given,
                                      measures, information))  # fmt: skip
    return results


def folds_of(names: Sequence[str], folds: int, seed: int) -> list[int]:
    """Each song's cross-validation fold, 0..folds-1, from its file name: the names sorted,
    shuffled by numpy's ``default_rng(seed).permutation``, the i-th of the shuffle in fold
    i mod folds (so that the folds are the same from any tool that sorts the same names)."""
    order = sorted(range(len(names)), key=lambda i: (names[i], i))
    fold = [0] * len(names)
    for i, j in enumerate(np.random.default_rng(seed).permutation(len(names))):
        fold[order[j]] = i % folds
    return fold


PER_NOTE = ("song", "position", "onset", "token", "pitch", "information_content",
            "pitch_information_content", "entropy", "pitch_entropy")  # fmt: skip


def per_note(songs: Sequence[SongEvaluation], folds: Sequence[int] | None = None) -> bytes:
    """CSV, one row per note and rest of each song, as IDyOM gives them: its place (position
    from 1; onset in quarter notes from the song's start), its token and MIDI pitch (empty for
    a rest), the information content (-log2 P) of the token and of its pitch (empty for a
    rest; they sum to the measures' token_bits and pitch_bits) and the entropies in bits of
    the distributions they come from. With ``folds``, a first column: each song's fold."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow((("fold",) if folds is not None else ()) + PER_NOTE)
    for i, s in enumerate(songs):
        onsets, _ = times(s.song.notes)
        for k, (note, row) in enumerate(zip(s.song.notes, s.information, strict=True)):
            figures = ["" if math.isnan(v) else f"{v:.6f}" for v in row]
            pitch = "" if note.is_rest else note.midi_pitch
            place = [s.song.name, k + 1, f"{onsets[k]:g}", note.token, pitch]
            writer.writerow(([folds[i]] if folds is not None else []) + place + figures)
    return out.getvalue().encode()


def evaluate(model: Model, songs: Sequence[Song], full_song: bool = True) -> Evaluation:
    """Every song against the model, batched by length so little time goes to padding.
    Without ``full_song``, the full-song continuation is skipped (it then counts as right)."""
    order = sorted(range(len(songs)), key=lambda i: len(songs[i].notes))
    results: dict[int, SongEvaluation] = {}
    start = 0
    while start < len(order):
        size = BATCH  # halved for long songs, down to 32 rows: a song's figures are the same
        while (
            size > 32 and size * len(songs[order[min(start + size, len(order)) - 1]].notes) > TOKENS
        ):
            size //= 2  # in any batch (its products go 32 rows at a time: layers.matmul)
        chunk = order[start : start + size]
        for i, r in zip(chunk, _batch(model, [songs[i] for i in chunk], full_song), strict=True):
            results[i] = r
        start += size
    return Evaluation([results[i] for i in range(len(songs))])


# Style figures of a composed tune against the training songs, as MGEval and MusPy report them.
MAJOR = (0, 2, 4, 5, 7, 9, 11)  # the natural minor's pitch classes are its relative major's
INTERVALS = 12  # intervals between successive notes are counted up to an octave either way


def pitch_class_histogram(songs: Sequence[Sequence[Note]]) -> np.ndarray:
    """The share of notes on each of the twelve pitch classes (C first)."""
    pitches = [n.midi_pitch % 12 for notes in songs for n in notes if not n.is_rest]
    counts = np.bincount(np.array(pitches, int), minlength=12).astype(float)
    return counts / max(counts.sum(), 1)


def interval_histogram(songs: Sequence[Sequence[Note]]) -> np.ndarray:
    """The share of each melodic interval between successive notes (rests skipped), -12..+12
    semitones, larger leaps counted as an octave."""
    pitches, song = [], []
    for i, notes in enumerate(songs):
        sounding = [n.midi_pitch for n in notes if not n.is_rest]
        pitches += sounding
        song += [i] * len(sounding)
    within = np.diff(np.array(song, int)) == 0  # successive notes of one song
    steps = np.clip(np.diff(np.array(pitches, int))[within], -INTERVALS, INTERVALS) + INTERVALS
    counts = np.bincount(steps, minlength=2 * INTERVALS + 1).astype(float)
    return counts / max(counts.sum(), 1)


@dataclass(frozen=True)
class Style:
    """``in_scale``: the share of notes in the best-fitting major or minor scale (MusPy's scale
    consistency). The distances are total variation distances (half the summed absolute
    differences: 0 the same, 1 nothing in common) of the tune's pitch-class and interval
    histograms from the training songs' (MGEval's pitch-class and interval histograms)."""

    lowest: int | None  # MIDI pitches
    highest: int | None
    scale: str
    in_scale: float
    pitch_class_distance: float
    interval_distance: float

    @property
    def range(self) -> str:
        if self.lowest is None or self.highest is None:
            return "no notes"
        return f"{pitch_name(self.lowest)}-{pitch_name(self.highest)}"


def _total_variation(p: np.ndarray, q: np.ndarray) -> float:
    return float(np.abs(p - q).sum() / 2)


@dataclass(frozen=True)
class Histograms:
    pitch_classes: np.ndarray
    intervals: np.ndarray

    @classmethod
    def of(cls, songs: Sequence[Sequence[Note]]) -> Histograms:
        return cls(pitch_class_histogram(songs), interval_histogram(songs))


@dataclass(frozen=True)
class Reference:
    """The training songs' figures that each composed tune is compared to (its style and its
    rhythm): computed once, when the model is saved (melodygen.json's "reference")."""

    histograms: Histograms
    rhythm: Rhythm

    @classmethod
    def of(cls, songs: Sequence[Song]) -> Reference:
        return cls(Histograms.of([s.notes for s in songs]), rhythm(songs))

    def to_json(self) -> dict:
        r = self.rhythm
        return {
            "pitch_classes": self.histograms.pitch_classes.tolist(),
            "intervals": self.histograms.intervals.tolist(),
            "rhythm": [r.tunes, r.whole, r.notes, r.crossing],
            "onsets": {f"{a}/{b}": c.astype(int).tolist() for (a, b), c in r.onsets.items()},
        }

    @classmethod
    def from_json(cls, data: object) -> Reference:
        """ValueError unless ``data`` is what to_json gives."""
        try:
            classes, intervals = (np.array(data[k], float) for k in ("pitch_classes", "intervals"))
            tunes, whole, notes, crossing = (int(v) for v in data["rhythm"])
            onsets = {tuple(int(x) for x in meter.split("/")): np.array(c, np.int64)
                      for meter, c in data["onsets"].items()}  # fmt: skip
        except (TypeError, KeyError, ValueError, AttributeError):
            raise ValueError("'reference' is not the training songs' figures") from None
        shapes = [classes.shape, intervals.shape, *(c.shape for c in onsets.values())]
        if shapes != [(12,), (2 * INTERVALS + 1,)] + [(POSITIONS,)] * len(onsets):
            raise ValueError("'reference' has figures of the wrong sizes")
        return cls(Histograms(classes, intervals), Rhythm(tunes, whole, notes, crossing, onsets))


def style(notes: Sequence[Note], training: Histograms) -> Style:
    """The style figures of a tune against the training songs' histograms."""
    pitches = [n.midi_pitch for n in notes if not n.is_rest]
    classes = pitch_class_histogram([notes])
    best, scale = -1.0, ""
    for tonic in range(12):
        share = sum(classes[(tonic + step) % 12] for step in MAJOR)
        if share > best + 1e-12:
            best, scale = (
                share,
                f"{key_for_people(key_on(tonic, False))} / "
                f"{key_for_people(key_on((tonic + 9) % 12, True))}",
            )
    return Style(
        min(pitches, default=None),
        max(pitches, default=None),
        scale,
        float(best) if pitches else 0.0,
        _total_variation(classes, training.pitch_classes),
        _total_variation(interval_histogram([notes]), training.intervals),
    )


def in_key(notes: Sequence[Note], key: str) -> float:
    """The share of the notes (rests aside) whose pitch class is in ``key``'s scale
    (theory.scale_of: major, or natural minor with the raised seventh)."""
    scale = scale_of(key)
    pitches = [n.midi_pitch % 12 for n in notes if not n.is_rest]
    return sum(p in scale for p in pitches) / len(pitches) if pitches else math.nan


@dataclass(frozen=True)
class Rhythm:
    """How some songs keep time (the module docstring defines the measures): counts, so that
    they add up; the shares are properties."""

    tunes: int = 0
    whole: int = 0  # tunes lasting a whole number of bars
    notes: int = 0
    crossing: int = 0  # notes sounding past the end of the bar they start in
    # meter -> how many notes start at each of the POSITIONS places of its bar
    onsets: Mapping[tuple[int, int], np.ndarray] = field(default_factory=dict)

    def __add__(self, other: Rhythm) -> Rhythm:
        onsets = dict(self.onsets)
        for meter, counts in other.onsets.items():
            onsets[meter] = onsets.get(meter, 0) + counts
        return Rhythm(self.tunes + other.tunes, self.whole + other.whole,
                      self.notes + other.notes, self.crossing + other.crossing, onsets)  # fmt: skip

    @property
    def whole_share(self) -> float:
        return self.whole / self.tunes if self.tunes else math.nan

    @property
    def crossing_share(self) -> float:
        return self.crossing / self.notes if self.notes else math.nan

    def to_json(self, reference: Rhythm) -> dict:
        """The counts, the shares, and the onsets' distance from ``reference``'s."""
        return {
            "tunes": self.tunes,
            "whole": self.whole,
            "whole_share": finite(self.whole_share),
            "notes": self.notes,
            "crossing": self.crossing,
            "crossing_share": finite(self.crossing_share),
            "onset_distance": finite(self.onset_distance(reference)),
        }

    def onset_distance(self, reference: Rhythm) -> float:
        """From the reference's onsets, meter by meter (1 for a meter it lacks), weighted by
        these songs' notes in each meter."""
        total, weights = 0.0, 0
        for meter, counts in self.onsets.items():
            theirs = reference.onsets.get(meter)
            n = int(counts.sum())
            if not n:
                continue
            distance = (
                1.0
                if theirs is None or not theirs.sum()
                else _total_variation(counts / n, theirs / theirs.sum())
            )
            total, weights = total + n * distance, weights + n
        return total / weights if weights else math.nan


def song_rhythm(song: Song) -> Rhythm:
    start = Start.of(song)
    starts, ends = times(song.notes)
    bars = float(ends[-1]) / start.bar if len(ends) else 0.0  # the song's length, rests too
    sounding = np.array([not n.is_rest for n in song.notes], bool)
    starts, ends = starts[sounding], ends[sounding]
    places = bar_positions(starts, start.bar, start.phase, POSITIONS)
    crossings = int(crossing(starts, ends, start.bar, start.phase).sum())
    onsets = {start.meter: np.bincount(places, minlength=POSITIONS)}
    return Rhythm(1, int(abs(bars - round(bars)) < 1e-9), len(starts), crossings, onsets)


def rhythm(songs: Sequence[Song]) -> Rhythm:
    """The rhythm measures of some songs (the module docstring)."""
    return sum((song_rhythm(s) for s in songs), Rhythm())
