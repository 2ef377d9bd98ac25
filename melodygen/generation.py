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

# Tunes are drawn side by side in at least this many rows (padded when fewer are asked), the
# finished ones dropped this many at a time. It is kinds.layers.ROWS: a matrix product gives a
# row the same bits whatever the other rows hold, but not whatever the number of rows, so the
# kinds multiply this many rows at a time and tune k is the same whether 1 or 100 are asked.
BLOCK = 32
MAX_COPY_TRIES = 20  # samplings of a tune before --max-copy gives up (and says so)
CHAPTER_LENGTH = 50  # tokens composed by default
LONGEST = 1000  # tokens, for a model that ends its tunes (the longest Essen tune has 520)


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
    return int(choose_rows(np.asarray(log_probs)[None], sampling, [rng])[0])


def choose_rows(
    log_probs: np.ndarray, sampling: Sampling, streams: Sequence[np.random.Generator | None]
) -> np.ndarray:
    """One token for each row of log-probabilities (rows, vocabulary), row r greedy without a
    random stream, else drawn with one number from ``streams[r]``: sharpened or flattened by the
    temperature, kept to the top_k likeliest (ties: the later token) and to the smallest set
    holding top_p (nucleus), then the first token whose cumulative probability passes the
    number. Each row's arithmetic is its own, whatever the other rows hold."""
    log_probs = np.asarray(log_probs)
    tokens = np.argmax(log_probs, axis=1)
    drawn = [r for r, rng in enumerate(streams) if rng is not None] if sampling.temperature else []
    if not drawn:
        return tokens
    logits = np.asarray(log_probs if len(drawn) == len(log_probs) else log_probs[drawn], np.float64)
    logits = logits / sampling.temperature  # a copy: the rows are changed below
    size = logits.shape[1]
    if 0 < sampling.top_k < size:
        dropped = np.argsort(logits, axis=1, kind="stable")[:, : -sampling.top_k]
        np.put_along_axis(logits, dropped, -np.inf, axis=1)
    p = np.exp(np.subtract(logits, logits.max(axis=1, keepdims=True), out=logits), out=logits)
    p /= p.sum(axis=1, keepdims=True)
    if sampling.top_p < 1:
        order = np.argsort(-p, axis=1, kind="stable")
        ordered = np.take_along_axis(p, order, axis=1)
        kept = (np.cumsum(ordered, axis=1) < sampling.top_p).sum(1) + 1  # searchsorted's left
        ordered[np.arange(size)[None, :] >= kept[:, None]] = 0
        np.put_along_axis(p, order, ordered, axis=1)
        p /= p.sum(axis=1, keepdims=True)
    number = np.array([streams[r].random() for r in drawn])  # type: ignore[union-attr]
    passed = (np.cumsum(p, axis=1) <= number[:, None]).sum(1)  # searchsorted's right
    tokens[drawn] = np.minimum(passed, size - 1)
    return tokens


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
        self.closing, self.log_probs = self.closing[rows], self.log_probs[rows]
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
    meter (``starts``, one per stream; None: 4/4). The tunes are drawn side by side, one
    forward step per token for all that are unfinished; fewer than BLOCK are padded to BLOCK
    rows, and the rows of finished tunes are dropped a block at a time (layers.matmul: a row's
    arithmetic is then the same whatever the number of tunes)."""
    check_seed(model, seed)
    limits = limits.for_model(model)
    count = len(streams)
    padding = max(BLOCK - count, 0)
    streams = [*streams, *[None] * padding]
    starts = [*(starts or [Start()] * count), *[Start()] * padding]
    rows = _Rows(model, seed, limits, starts)
    tunes: list[list[int]] = [[] for _ in range(count)]
    row = np.arange(len(streams))
    tune_of = np.where(row < count, row, -1)  # the tune each row draws; -1: padding
    done = tune_of < 0
    end = model.vocab.end
    for _ in range(limits.length):
        allowed = rows.allowed(end_inside=True)
        done |= ~np.isfinite(allowed).any(1)
        live = np.flatnonzero(~done)
        tokens = np.zeros(len(tune_of), np.int64)
        asked = allowed if len(live) == len(tune_of) else allowed[live]
        tokens[live] = choose_rows(asked, sampling, [streams[tune_of[r]] for r in live])
        if limits.in_bars and end is not None:  # an <end> inside a bar: end where it ends
            closing = live[(tokens[live] == end) & rows.inside[live]]
            rows.closing[closing] = True
            allowed[closing, end] = -np.inf
            again = closing[np.isfinite(allowed[closing]).any(1)]
            tokens[again] = choose_rows(
                allowed[again], sampling, [streams[tune_of[r]] for r in again]
            )
        if end is not None:
            done[live[tokens[live] == end]] = True
            tokens[done] = 0
        for r in live[~done[live]]:
            tunes[tune_of[r]].append(int(tokens[r]))
        if done.all():
            break
        rows.feed(tokens)
        done |= (rows.left <= 1e-9) | (rows.closing & ~rows.inside)
        kept = np.flatnonzero(~done)
        if _blocks(max(len(kept), BLOCK)) < _blocks(len(tune_of)):  # a whole block finished
            kept = np.concatenate([kept, np.flatnonzero(done)[: max(BLOCK - len(kept), 0)]])
            rows.select(kept)
            tune_of, done = tune_of[kept], done[kept]
    return tunes


def _blocks(rows: int) -> int:
    """Matrix products (layers.matmul) a step of this many rows takes."""
    return -(-rows // BLOCK)


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
        for k, tokens, copied in zip(pending, tunes, copies.longest_of(tunes), strict=True):
            drawn[k] = Drawn(tokens, copied, attempt)
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
    """Finds the longest run of each tune that a training song also has, for all the tunes at
    once, one length at a time. The tunes' runs of length L are numbered (each distinct run
    once); a training place has one of them when it has the run of length L - 1 numbered n
    and then the token t that makes (n, t) one of them, so each length looks up only the
    places the one before left: O(tokens) for the first lengths, far fewer after, never
    tune x corpus."""

    def __init__(self, songs: Sequence[Sequence[int]]) -> None:
        self.tokens = np.concatenate([np.asarray(s, np.int64) for s in songs] or [np.zeros(0)])
        self.tokens = self.tokens.astype(np.int64)
        lengths = np.array([len(s) for s in songs], np.int64)
        self.starts = np.concatenate([[0], np.cumsum(lengths)])
        self.song_end = np.repeat(self.starts[1:], lengths)  # where each position's song ends

    def longest(self, tune: Sequence[int]) -> Copied:
        return self.longest_of([tune])[0]

    def longest_of(self, tunes: Sequence[Sequence[int]]) -> list[Copied]:
        """Each tune's longest copied run, where the tune first has one that long, and where
        the training songs first have it."""
        runs = [np.asarray(t, np.int64) for t in tunes]
        lengths = np.array([len(t) for t in runs], np.int64)
        begins = np.cumsum(lengths) - lengths  # where each tune starts in ``flat``
        flat = np.concatenate([*runs, np.zeros(0, np.int64)])  # the tunes, one after another
        owner = np.repeat(np.arange(len(runs)), lengths)  # the tune of each place in ``flat``
        tune_end = np.repeat(begins + lengths, lengths)
        symbols, symbol = np.unique(flat, return_inverse=True)  # the tunes' tokens, numbered
        numbered = np.full(int(max(flat.max(initial=0), self.tokens.max(initial=0))) + 1, -1)
        numbered[symbols] = np.arange(len(symbols))
        their_symbol = numbered[self.tokens]  # -1: a token no tune has
        best = [Copied(0)] * len(runs)
        # Tune places and training places whose run of the length before is one of the tunes'
        # runs, and its number (the empty run is number 0, of 1)
        mine, theirs = np.arange(len(flat)), np.arange(len(self.tokens))
        my_run, their_run = np.zeros(len(mine), np.int64), np.zeros(len(theirs), np.int64)
        runs_before, length = 1, 0
        while True:
            length += 1
            alive = mine + length <= tune_end[mine]
            mine, my_run = mine[alive], my_run[alive]
            alive = theirs + length <= self.song_end[theirs]
            theirs, their_run = theirs[alive], their_run[alive]
            following = their_symbol[theirs + length - 1]
            alive = following >= 0
            theirs, their_run, following = theirs[alive], their_run[alive], following[alive]
            if not len(mine) or not len(theirs):
                return best
            # a run is (the number of its run of the length before, its last token's)
            runs_of_length, my_run = np.unique(my_run * len(symbols) + symbol[mine + length - 1],
                                               return_inverse=True)  # fmt: skip
            code = their_run * len(symbols) + following
            if runs_before * len(symbols) <= 8 * len(theirs):  # a table is cheaper to look in
                table = np.full(runs_before * len(symbols), -1)
                table[runs_of_length] = np.arange(len(runs_of_length))
                found = table[code]
                hit = found >= 0
            else:
                found = np.minimum(np.searchsorted(runs_of_length, code), len(runs_of_length) - 1)
                hit = runs_of_length[found] == code
            theirs, their_run, runs_before = theirs[hit], found[hit], len(runs_of_length)
            earliest = np.full(len(runs_of_length), len(self.tokens))  # the first place of each
            np.minimum.at(earliest, their_run, theirs)
            where = earliest[my_run]
            copied = where < len(self.tokens)
            mine, my_run, where = mine[copied], my_run[copied], where[copied]
            tunes_hit, first = np.unique(owner[mine], return_index=True)  # mine: in tune order
            for tune, i in zip(tunes_hit.tolist(), first.tolist(), strict=True):
                song = int(np.searchsorted(self.starts, where[i], side="right") - 1)
                best[tune] = Copied(length, song, int(mine[i] - begins[tune]))


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
