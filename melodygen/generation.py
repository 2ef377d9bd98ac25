"""Composing with any model kind on numpy alone: sampling, beam search, stopping rules, how
much of a composed tune a training song already has, and the tune as a song.

Everything here runs through a kind's predictor (kinds/base.py), so it is written once for
every kind.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from melodygen import theory
from melodygen.encoding import Start, Vocabulary, meter_of, transpose
from melodygen.errors import BadInput
from melodygen.notation import Note, Song

if TYPE_CHECKING:
    from melodygen.kinds.base import Kind, Model

# Tunes are composed in blocks of this many rows, padded when fewer are asked: a matrix product
# gives a row the same bits whatever the other rows hold, but not whatever the number of rows,
# so output k is the same whether 1 or 100 are asked for.
BLOCK = 32
MAX_COPY_TRIES = 20  # samplings of a tune before --max-copy gives up (and says so)
CHAPTER_LENGTH = 50  # tokens composed by default
LONGEST = 1000  # tokens, for a model that ends its tunes (the longest Essen tune has 520)
HASH_BASE = np.uint64(0x9E3779B97F4A7C15)  # odd, so it has an inverse modulo 2**64
HASH_INVERSE = np.uint64(pow(int(HASH_BASE), -1, 2**64))


@dataclass(frozen=True)
class Sampling:
    """How the next token is chosen: temperature 0 is the chapter's argmax; above it, samples
    from the distribution sharpened (< 1) or flattened (> 1), kept to the ``top_k`` likeliest
    (0: all) and to the smallest set holding ``top_p`` of the probability (nucleus). ``beam``
    > 0 searches that many continuations for the likeliest one instead. A temperature of None
    is the model kind's own (``Kind.temperature``), set by ``for_kind``."""

    temperature: float | None = 0.0
    top_k: int = 0
    top_p: float = 1.0
    beam: int = 0

    def __post_init__(self) -> None:
        if self.temperature is not None and not self.temperature >= 0:
            raise BadInput(f"must be 0 or more, not {self.temperature:g}", "temperature")
        if self.top_k < 0:
            raise BadInput(f"must be 0 or more, not {self.top_k}", "top_k")
        if not 0 < self.top_p <= 1:
            raise BadInput(f"must be above 0 and at most 1, not {self.top_p:g}", "top_p")
        if self.beam < 0:
            raise BadInput(f"must be 0 or more, not {self.beam}", "beam")

    def for_kind(self, kind: Kind) -> Sampling:
        if self.temperature is not None:
            return self
        return dataclasses.replace(self, temperature=kind.temperature)

    @property
    def deterministic(self) -> bool:
        return not self.temperature or self.beam > 0


def choose(log_probs: np.ndarray, sampling: Sampling, rng: np.random.Generator | None) -> int:
    """One token from next-token log-probabilities; greedy without a random stream."""
    if not sampling.temperature or rng is None:
        return int(np.argmax(log_probs))
    logits = np.asarray(log_probs, np.float64) / sampling.temperature
    if 0 < sampling.top_k < len(logits):
        logits[np.argsort(logits, kind="stable")[: -sampling.top_k]] = -np.inf
    p = np.exp(logits - logits.max())
    p /= p.sum()
    if sampling.top_p < 1:
        order = np.argsort(-p, kind="stable")
        kept = np.searchsorted(np.cumsum(p[order]), sampling.top_p) + 1
        p[order[kept:]] = 0
        p /= p.sum()
    return int(min(np.searchsorted(np.cumsum(p), rng.random(), side="right"), len(p) - 1))


@dataclass(frozen=True)
class Limits:
    """When a tune stops: after ``length`` tokens, at the ``bars``-th bar line after the seed
    (0: no such limit; no token may cross it), or at the model's <end> (if ``stop_at_end``).
    Without a ``length`` (None, see ``for_model``): 50 tokens, as the chapter composes; as many
    as the bars hold with ``bars``; up to LONGEST for a model that ends tunes itself. With
    ``in_bars``, no token sounds past the end of its bar and a tune ends only on a bar line (the
    seed starts on one): where a sampled tune would end inside a bar, it finishes the bar (None:
    tasks.compose decides, for a model told the meter)."""

    length: int | None = None
    bars: int = 0
    stop_at_end: bool = True
    in_bars: bool | None = False

    def for_model(self, model: Model) -> Limits:
        if self.length is not None:
            return self
        ends = self.stop_at_end and model.vocab.end is not None
        length = sys.maxsize if self.bars else LONGEST if ends else CHAPTER_LENGTH
        return dataclasses.replace(self, length=length)

    def beats_left(self, seed_beats: float, bar: float) -> float:
        """Beats from the seed's end to the ``bars``-th bar line after it."""
        if not self.bars:
            return math.inf
        return (math.floor(seed_beats / bar + 1e-9) + self.bars) * bar - seed_beats


class _Rows:
    """A block of tunes continuing the same seed, read in step by one predictor, each tune in
    its own meter (``starts``: the seed starts on a bar line)."""

    def __init__(
        self, model: Model, seed: Sequence[int], limits: Limits, starts: Sequence[Start]
    ) -> None:
        vocab = model.vocab
        self.model, self.limits = model, limits
        self.beats = np.array([n.beats for n in vocab.notes] + [0.0] * len(vocab.specials))
        self.never = [i for i in (vocab.unknown, None if limits.stop_at_end else vocab.end)
                      if i is not None]  # fmt: skip
        self.predictor = model.predictor()
        self.log_probs = self.predictor.reset(len(starts), starts)
        for index in seed:
            self.log_probs = self.predictor.feed(np.full(len(starts), index))
        seed_beats = float(self.beats[list(seed)].sum())
        self.left = np.array([limits.beats_left(seed_beats, s.bar) for s in starts])
        self.bar = np.array([s.bar for s in starts])
        self.time = np.full(len(starts), seed_beats)  # quarter notes from the seed's start
        self.closing = np.zeros(len(starts), bool)  # in_bars: to end where this bar ends

    @property
    def inside(self) -> np.ndarray:
        """Which tunes are inside a bar, not on a bar line."""
        return np.mod(self.time + 1e-9, self.bar) > 2e-9

    def allowed(self, end_inside: bool = False) -> np.ndarray:
        """Next-token log-probabilities with what may not come next at -inf (with
        ``end_inside``, <end> inside a bar too, which sampling turns into closing the bar)."""
        log_probs = np.array(self.log_probs, np.float64)
        log_probs[:, self.never] = -np.inf
        left = self.left
        if self.limits.in_bars:
            within = np.mod(self.time + 1e-9, self.bar)  # how far into its bar
            left = np.minimum(left, self.bar - within + 1e-9)
            if self.model.vocab.end is not None:
                no_end = self.closing | (self.inside & (not end_inside))
                log_probs[no_end, self.model.vocab.end] = -np.inf
        log_probs[self.beats[None, :] > left[:, None] + 1e-9] = -np.inf
        return log_probs

    def feed(self, tokens: np.ndarray) -> None:
        self.left = self.left - self.beats[tokens]
        self.time = self.time + self.beats[tokens]
        self.log_probs = self.predictor.feed(tokens)

    def select(self, rows: np.ndarray) -> None:
        self.left, self.bar, self.time = self.left[rows], self.bar[rows], self.time[rows]
        self.closing = self.closing[rows]
        self.predictor.select(rows)


def check_seed(model: Model, seed: Sequence[int]) -> None:
    if not seed and model.given:
        raise BadInput(
            f"a {model.kind.name} model continues a seed of at least {model.given} notes",
            parameter="seed",
        )
    if len(seed) < model.given:
        raise BadInput(
            f"has {len(seed)} notes; this model needs at least {model.given}", parameter="seed"
        )


def sample(
    model: Model,
    seed: Sequence[int],
    streams: Sequence[np.random.Generator | None],
    sampling: Sampling = Sampling(),
    limits: Limits = Limits(),
    starts: Sequence[Start] | None = None,
) -> list[list[int]]:
    """One tune per random stream (None: greedy), each the tokens added after the seed, in its
    meter (``starts``, one per stream; None: 4/4)."""
    check_seed(model, seed)
    limits = limits.for_model(model)
    starts = list(starts or [Start()] * len(streams))
    tunes: list[list[int]] = []
    for first in range(0, len(streams), BLOCK):
        block = list(streams[first : first + BLOCK])
        padding = BLOCK - len(block)
        rows = starts[first : first + BLOCK] + [Start()] * padding
        tunes += _sample_block(model, seed, block + [None] * padding, sampling, limits,
                               rows, len(block))[: len(block)]  # fmt: skip
    return tunes


def _sample_block(model, seed, streams, sampling, limits, starts, live) -> list[list[int]]:
    """The tunes of the first ``live`` streams; the rest pad the block to its fixed size (so
    that a tune's arithmetic is the same whatever the count), and are done from the start."""
    rows = _Rows(model, seed, limits, starts)
    tunes: list[list[int]] = [[] for _ in streams]
    done = np.arange(len(streams)) >= live
    end = model.vocab.end
    for _ in range(limits.length):
        allowed = rows.allowed(end_inside=True)
        inside = rows.inside
        tokens = np.zeros(len(streams), np.int64)
        for r, rng in enumerate(streams):
            if done[r] or not np.isfinite(allowed[r]).any():
                done[r] = True
                continue
            token = choose(allowed[r], sampling, rng)
            if token == end and limits.in_bars and inside[r]:  # end where this bar ends
                rows.closing[r] = True
                allowed[r, end] = -np.inf
                if not np.isfinite(allowed[r]).any():
                    done[r] = True
                    continue
                token = choose(allowed[r], sampling, rng)
            if token == end:
                done[r] = True
                continue
            tunes[r].append(token)
            tokens[r] = token
        if done.all():
            break
        rows.feed(tokens)
        done |= (rows.left <= 1e-9) | (rows.closing & ~rows.inside)
    return tunes


def beam_search(
    model: Model, seed: Sequence[int], width: int, limits: Limits, start: Start = Start()
) -> list[int]:
    """The likeliest continuation found keeping the ``width`` likeliest partial tunes at each
    step: a tune ends at <end>, at the bar limit, or at the length limit."""
    check_seed(model, seed)
    limits = limits.for_model(model)
    rows = _Rows(model, seed, limits, [start])
    alive: list[list[int]] = [[]]
    scores = np.zeros(1)
    finished: list[tuple[float, list[int]]] = []
    for _ in range(limits.length):
        total = scores[:, None] + rows.allowed()
        flat = np.argsort(-total, axis=None, kind="stable")[:width]
        flat = flat[np.isfinite(total.ravel()[flat])]
        keep, tokens, kept_scores = [], [], []
        for row, token in zip(*np.unravel_index(flat, total.shape), strict=True):
            score = float(total[row, token])
            if token == model.vocab.end:
                finished.append((score, alive[row]))
            else:
                keep.append(row)
                tokens.append(token)
                kept_scores.append(score)
        if not keep or (finished and max(finished)[0] >= max(kept_scores)):
            break  # scores only fall: nothing alive can beat the best finished tune
        alive = [alive[r] + [int(t)] for r, t in zip(keep, tokens, strict=True)]
        scores = np.array(kept_scores)
        rows.select(np.array(keep))
        rows.feed(np.array(tokens))
        ended = rows.left <= 1e-9
        finished += [(float(s), a) for s, a, e in zip(scores, alive, ended, strict=True) if e]
        if ended.all():
            break
        alive = [a for a, e in zip(alive, ended, strict=True) if not e]
        rows.select(np.flatnonzero(~ended))
        scores = scores[~ended]
    else:
        finished += list(zip(scores.tolist(), alive, strict=True))
    return max(finished, key=lambda f: f[0])[1] if finished else []


@dataclass(frozen=True)
class Drawn:
    tokens: list[int]  # added after the seed
    copied: Copied
    tries: int  # samplings it took


def draw(
    model: Model,
    seed: Sequence[int],
    count: int,
    sampling: Sampling,
    random_seed: int,
    limits: Limits,
    copies: CopyIndex,
    max_copy: int | None = None,
    tries: int = MAX_COPY_TRIES,
    starts: Sequence[Start] | None = None,
) -> list[Drawn]:
    """``count`` tunes, tune k (from 1) from its own random stream (random_seed, k), so it is the
    same whatever the count, in its own meter (``starts``; None: 4/4); one whose longest copied
    run exceeds ``max_copy`` is drawn again from its stream, up to ``tries`` times."""
    starts = list(starts or [Start()] * count)
    streams = [None if sampling.deterministic else np.random.default_rng([random_seed, k])
               for k in range(1, count + 1)]  # fmt: skip
    drawn: dict[int, Drawn] = {}
    pending = list(range(count))
    for attempt in range(1, tries + 1):
        if sampling.beam:
            tunes = [beam_search(model, seed, sampling.beam, limits, starts[k]) for k in pending]
        else:
            tunes = sample(model, seed, [streams[k] for k in pending], sampling, limits,
                           [starts[k] for k in pending])  # fmt: skip
        for k, tokens in zip(pending, tunes, strict=True):
            drawn[k] = Drawn(tokens, copies.longest(tokens), attempt)
        if max_copy is None or sampling.deterministic:
            break
        pending = [k for k in pending if drawn[k].copied.length > max_copy]
        if not pending:
            break
    return [drawn[k] for k in range(count)]


@dataclass(frozen=True)
class Copied:
    """The longest run of a tune's tokens that a training song also has."""

    length: int
    song: int | None = None  # index into the training songs
    at: int = 0  # where the run starts in the tune


class CopyIndex:
    """Finds the longest run of a tune that also occurs in a training song, by hashing every
    n-gram of the training songs for the run lengths a binary search asks about (a run of
    length L copied means one of L - 1 is too): O(tokens) per length, never tune x corpus."""

    def __init__(self, songs: Sequence[Sequence[int]]) -> None:
        self.tokens = np.concatenate([np.asarray(s, np.int64) for s in songs] or [np.zeros(0)])
        self.tokens = self.tokens.astype(np.int64)
        lengths = np.array([len(s) for s in songs], np.int64)
        self.starts = np.concatenate([[0], np.cumsum(lengths)])
        self.song_end = np.repeat(self.starts[1:], lengths)  # where each position's song ends
        self.prefix = _prefix_hashes(self.tokens)
        self._by_length: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _grams(self, length: int) -> tuple[np.ndarray, np.ndarray]:
        """The sorted hashes of every training n-gram of this length, and where each starts."""
        if length not in self._by_length:
            starts = np.flatnonzero(np.arange(len(self.tokens)) + length <= self.song_end)
            hashes = _window_hashes(self.prefix, starts, length)
            order = np.argsort(hashes, kind="stable")
            self._by_length[length] = hashes[order], starts[order]
        return self._by_length[length]

    def _find(self, tune: np.ndarray, prefix: np.ndarray, length: int) -> tuple[int, int] | None:
        """(where in the tune, where in the corpus) of a copied run of this length, or None."""
        hashes, starts = self._grams(length)
        mine = _window_hashes(prefix, np.arange(len(tune) - length + 1), length)
        found = np.minimum(np.searchsorted(hashes, mine), max(len(hashes) - 1, 0))
        for i in np.flatnonzero(hashes[found] == mine) if len(hashes) else []:
            at = int(starts[found[i]])
            if np.array_equal(self.tokens[at : at + length], tune[i : i + length]):
                return int(i), at
        return None

    def longest(self, tune: Sequence[int]) -> Copied:
        tune = np.asarray(tune, np.int64)
        prefix = _prefix_hashes(tune)
        low, high, best = 0, len(tune), Copied(0)
        while low < high:  # invariant: a run of `low` is copied, none longer than `high`
            mid = (low + high + 1) // 2
            hit = self._find(tune, prefix, mid)
            if hit is None:
                high = mid - 1
            else:
                low = mid
                song = int(np.searchsorted(self.starts, hit[1], side="right") - 1)
                best = Copied(mid, song, hit[0])
        return best


def _prefix_hashes(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(S, Q) with S[i] = sum of (tokens[j] + 1) * B**j for j < i and Q[j] = B**-j, modulo 2**64
    (numpy's unsigned arithmetic wraps): a window's hash is then two subtractions away."""
    n = len(tokens)
    with np.errstate(over="ignore"):
        powers = np.concatenate([[np.uint64(1)], np.cumprod(np.full(max(n - 1, 0), HASH_BASE))])
        inverses = np.concatenate(
            [[np.uint64(1)], np.cumprod(np.full(max(n - 1, 0), HASH_INVERSE))]
        )
        sums = np.concatenate(
            [[np.uint64(0)], np.cumsum((tokens.astype(np.uint64) + 1) * powers[:n])]
        )
    return sums.astype(np.uint64), inverses.astype(np.uint64)


def _window_hashes(prefix: tuple[np.ndarray, np.ndarray], starts: np.ndarray, length: int):
    """The hash of tokens[start : start + length] for each start, the same wherever it stands."""
    sums, inverses = prefix
    with np.errstate(over="ignore"):
        return (sums[starts + length] - sums[starts]) * inverses[starts]


METER_STREAM = 1  # tune k's meter comes from the random stream (random_seed, k, METER_STREAM)


def tune_meters(
    songs: Sequence[Song],
    count: int,
    random_seed: int | None,
    asked: tuple[int, int] | None = None,
    told: bool = False,
) -> list[tuple[int, int] | None]:
    """Each tune's meter: the one asked for, which a model ``told`` the meter must have seen in
    its training ``songs`` (a song without a meter is in 4/4); else, for such a model, one drawn
    from the songs' meters as often as they have them, from tune k's own stream (the most common
    without a random seed); else, for a model not told the meter, which composes the same tune
    in any, the most common meter the songs give (None if none gives one)."""
    if not told:
        given = collections.Counter(s.time for s in songs if s.time)
        return [asked or (given.most_common(1)[0][0] if given else None)] * count
    meters = collections.Counter(meter_of(s) for s in songs)
    if asked is not None:
        if asked not in meters:
            known = ", ".join(f"{a}/{b}" for a, b in sorted(meters))
            raise BadInput(f"the model never saw {asked[0]}/{asked[1]}: it knows {known}", "time")
        return [asked] * count
    if random_seed is None:
        return [meters.most_common(1)[0][0]] * count
    known = sorted(meters)
    weights = np.array([meters[m] for m in known], np.float64)
    draws = [np.random.default_rng([random_seed, k, METER_STREAM]) for k in range(1, count + 1)]
    return [known[rng.choice(len(known), p=weights / weights.sum())] for rng in draws]


@dataclass(frozen=True)
class Header:
    """A composed tune's tempo (quarter notes per minute), meter and General MIDI program."""

    tempo: float | None = None
    time: tuple[int, int] | None = None
    program: int | None = None

    def filled(self, songs: Sequence[Song]) -> Header:
        """Each value not given taken from the songs (the training songs): their most common."""
        return Header(*(_most_common(songs, f.name) if getattr(self, f.name) is None
                        else getattr(self, f.name) for f in dataclasses.fields(self)))  # fmt: skip


def _most_common(songs: Sequence[Song], key: str):
    values = [getattr(s, key) for s in songs if getattr(s, key) is not None]
    return collections.Counter(values).most_common(1)[0][0] if values else None


def tune_song(
    vocab: Vocabulary,
    seed: Sequence[Note],
    added: Sequence[int],
    title: str,
    header: Header,
    key: str | None = None,
    transpose: bool = False,
) -> Song:
    """A composed tune as a song: the seed as the user wrote it, then the added tokens spelled
    for the tune's key (a model that knows both c#4 and d-4 writes one of them), which its key:
    header gives: ``key`` (with ``transpose``, the whole tune moved into it: to_key), else the
    key estimated from all its notes."""
    notes = tuple(vocab.notes[i] for i in added)
    if key and transpose:
        seed, notes = (), to_key((*seed, *notes), key)
    sounds = [(n.midi_pitch, n.beats) for n in (*seed, *notes) if not n.is_rest]
    key = key or theory.key_of(sounds)
    notes = tuple(seed) + (theory.respell(notes, key) if key else notes)
    return Song(notes, name=title, title=title, tempo=header.tempo, time=header.time,
                program=header.program, key=key)  # fmt: skip


def to_key(notes: Sequence[Note], key: str) -> tuple[Note, ...]:
    """The notes moved into ``key``: by the fewest semitones (up to a tritone) that take the
    key they suggest (theory.key_of), or its relative major or minor when the modes differ,
    onto it; an octave less or more when a note would leave MIDI's range."""
    sounds = [(n.midi_pitch, n.beats) for n in notes if not n.is_rest]
    found = theory.key_of(sounds)
    if found is None:
        return tuple(notes)
    target = theory.tonic_of(key)
    if key[0].islower() != found[0].islower():  # the relative: a minor third below the major
        target += 9 if found[0].islower() else 3
    shift = (target - theory.tonic_of(found) + 6) % 12 - 6
    for semitones in (shift, shift - 12, shift + 12):
        moved = transpose(notes, semitones)
        if moved is not None:
            return moved
    return tuple(notes)
