"""Within-tune learning: what a model learns from the tune it is reading, as it reads it.

Folk tunes repeat their phrases, so the tune so far is the best clue to its next note (Pearce
2005, IDyOM's short-term model). A ``Learner`` wraps any kind's predictor (kinds/base.py) and
changes its next-token distributions with up to four mechanisms, each reset for every tune:

- ``short_term``: IDyOM's short-term model, a variable-order Markov model of the tune so far
  alone, blended PPM-style from order -1 (uniform) up to ``order`` with escape method C
  (Moffat 1990: the escape count is the number of distinct symbols seen in the context). It is
  kept per viewpoint (the token, or its pitch and its length, multiplied), and leaves <end>
  and <unk> to the model.
- ``long_term``: IDyOM's long-term model beside a model that is not one: an n-gram of its
  training songs (kinds.learning counts it). These two join the model's distribution by
  IDyOM's entropy-weighted geometric mean: each distribution weighs its weight times (its
  entropy / the largest entropy possible) ** -bias, so the surer one counts more.
- ``dynamic``: dynamic evaluation of the output layer (Krause et al. 2018, on the last layer
  only, so that it needs no gradients through the LSTM): after each token the output weights
  take one SGD step of this size on that token's loss. In closed form, the logits gain
  -dynamic * sum_i (h . h_i + 1) (p_i - onehot(token_i)) over the tune's earlier steps i.
- ``cache``: a neural cache (Grave et al. 2017): P_cache(w) proportional to the sum over
  earlier steps i whose token was w of exp(theta * h . h_i), mixed in with weight ``cache``.

The last two need the model's last hidden layer (a predictor's ``hidden``: the song-rnn's);
the short-term model serves every kind. numpy only, as composing and evaluating are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from melodygen.encoding import Start, Vocabulary
from melodygen.errors import BadInput

VIEWPOINTS = ("token", "pitch+length")  # what the short-term model counts


@dataclass(frozen=True)
class Within:
    """How a model learns within each tune (the module docstring); all off: not at all."""

    short_term: float = 0.0  # the short-term model's weight (its entropy weight's factor)
    long_term: float = 0.0  # the weight of an n-gram of the training songs (kinds.learning)
    order: int = 8  # the short-term model's longest context, in tokens
    bias: float = 2.0  # the entropy weights' exponent
    viewpoint: str = "pitch+length"  # one of VIEWPOINTS
    dynamic: float = 0.0  # the output layer's SGD step; 0: off
    cache: float = 0.0  # the cache's share of the mixture; 0: off
    theta: float = 0.3  # the cache's sharpness

    @property
    def on(self) -> bool:
        return any((self.short_term, self.long_term, self.dynamic, self.cache))

    def describe(self) -> str:
        parts = []
        if self.short_term:
            parts.append(f"short-term model ({self.viewpoint}, order {self.order}, weight "
                         f"{self.short_term:g})")  # fmt: skip
        if self.long_term:
            parts.append(f"the training songs' n-gram (weight {self.long_term:g})")
        if self.short_term or self.long_term:
            parts.append(f"entropy bias {self.bias:g}")
        if self.dynamic:
            parts.append(f"dynamic evaluation (step {self.dynamic:g})")
        if self.cache:
            parts.append(f"cache ({self.cache:g}, theta {self.theta:g})")
        return ", ".join(parts) or "none"


OFF = Within()


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """kinds/layers.py's, imported when first called: the kinds import this module."""
    from melodygen.kinds.layers import log_softmax as normalized

    return normalized(logits)


def parse(text: str, default: Within = OFF) -> Within:
    """A Within from the command line's text: ``none``; ``default`` (``default``: the kind's);
    the mechanisms to turn on (stm, ngram, dynamic, cache) and ``NAME=VALUE`` for any field,
    after ``default`` to change it, e.g. ``default,bias=2``. BadInput naming what does not
    fit."""
    turned_on = {"stm": ("short_term", 1.0), "ngram": ("long_term", 1.0),
                 "dynamic": ("dynamic", 0.003), "cache": ("cache", 0.1)}  # fmt: skip
    fields = {f.name: f for f in dataclasses.fields(Within)}
    base, values = OFF, {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip().replace("-", "_")
        if not sep and name in ("none", "default"):
            base, values = (OFF if name == "none" else default), {}
            continue
        if not sep and name in turned_on:
            values.setdefault(*turned_on[name])
            continue
        field = fields.get({"stm": "short_term", "ngram": "long_term"}.get(name, name))
        if field is None or not sep:
            raise BadInput(
                f"expected none, default, stm, ngram, dynamic, cache or NAME=VALUE (NAME one of "
                f"{', '.join(fields)}), not {part!r:.40}",
                "within-tune",
            )
        try:
            values[field.name] = value.strip() if field.type == "str" else (
                int(value) if field.type == "int" else float(value)
            )  # fmt: skip
        except ValueError:
            raise BadInput(f"{name} must be a number, not {value!r:.20}", "within-tune") from None
    within = dataclasses.replace(base, **values)
    numbers = [getattr(within, f) for f in fields if fields[f].type != "str"]
    if within.viewpoint not in VIEWPOINTS or min(numbers) < 0 or within.cache >= 1:
        raise BadInput(f"the viewpoint is one of {', '.join(VIEWPOINTS)}; the numbers are at "
                       "least 0, the cache's share below 1", "within-tune")  # fmt: skip
    return within


def _views(vocab: Vocabulary, viewpoint: str) -> list[np.ndarray]:
    """Each vocabulary entry's symbol in each view: ints (V,), the specials apart."""
    if viewpoint == "token":
        return [np.arange(len(vocab))]
    pitch = np.arange(len(vocab)) + 200  # a special is its own pitch and length
    length = np.arange(len(vocab)) + 200
    for i, note in enumerate(vocab.notes):
        pitch[i] = 128 if note.is_rest else note.midi_pitch
        length[i] = note.length_class
    return [np.unique(pitch, return_inverse=True)[1], np.unique(length, return_inverse=True)[1]]


class _Grown:
    """A (batch, steps, width) array that grows by one step at a time without copying each."""

    def __init__(self, batch: int, width: int, dtype=np.float32) -> None:
        self.data = np.zeros((batch, 16, width), dtype)
        self.steps = 0

    def push(self, rows: np.ndarray) -> None:
        if self.steps == self.data.shape[1]:
            more = np.zeros_like(self.data)
            self.data = np.concatenate([self.data, more], 1)
        self.data[:, self.steps] = rows
        self.steps += 1

    @property
    def view(self) -> np.ndarray:
        return self.data[:, : self.steps]

    def select(self, rows: np.ndarray) -> None:
        self.data = self.data[rows]


class ShortTerm:
    """IDyOM's short-term model of a batch of tunes read in step, over one view's symbols.

    After symbols a[0..t-1], S(j) (j < t) is the length of the longest common suffix of a[:j]
    and a[:t], up to ``order``: the symbol a[j] followed a context of order m exactly when
    S(j) >= m, so each order's counts are read from S, which grows one step at a time as in
    kinds/song_rnn.Repeats."""

    def __init__(self, batch: int, symbols: int, order: int) -> None:
        self.k, self.order = symbols, order
        self.seen = np.zeros((batch, 0), np.int64)
        self.suffix = np.zeros((batch, 0), np.int64)

    def push(self, symbols: np.ndarray) -> None:
        grown = np.where(self.seen == symbols[:, None], np.minimum(self.suffix + 1, self.order), 0)
        self.suffix = np.concatenate([np.zeros((len(symbols), 1), np.int64), grown], 1)
        self.seen = np.concatenate([self.seen, symbols[:, None]], 1)

    def probabilities(self) -> np.ndarray:
        """P(the next symbol) (batch, symbols), blended from order -1 up."""
        batch, t = self.seen.shape
        p = np.full((batch, self.k), 1.0 / self.k)
        if not t:
            return p
        # exact[b, m, s]: positions j with S(j) = m and a[j] = s; order m counts S(j) >= m
        flat = (np.arange(batch)[:, None] * (self.order + 1) + self.suffix) * self.k + self.seen
        exact = np.bincount(flat.ravel(), minlength=batch * (self.order + 1) * self.k)
        counts = exact.reshape(batch, self.order + 1, self.k)[:, ::-1].cumsum(1)[:, ::-1]
        for m in range(self.order + 1):
            c = counts[:, m]
            total = c.sum(1, keepdims=True)
            escape = (c > 0).sum(1, keepdims=True)
            p = np.where(total > 0, (c + escape * p) / np.maximum(total + escape, 1), p)
        return p

    def select(self, rows: np.ndarray) -> None:
        self.seen, self.suffix = self.seen[rows], self.suffix[rows]


def _entropy_weight(log_p: np.ndarray, largest: float, bias: float) -> np.ndarray:
    """(entropy / largest) ** -bias of each row's distribution (batch, 1)."""
    h = -(np.exp(log_p) * log_p).sum(1, keepdims=True)
    return np.maximum(h / largest, 1e-6) ** -bias


class Learner:
    """A predictor that learns within each tune: kinds/base.Predictor's interface."""

    def __init__(self, inner, within: Within, vocab: Vocabulary, long_term=None) -> None:
        self.inner, self.within, self.size = inner, within, len(vocab)
        self.song_tokens = vocab.song_tokens
        self.long_term = long_term if within.long_term else None
        self.views = _views(vocab, within.viewpoint)

    def reset(self, batch: int = 1, starts: Sequence[Start] | None = None) -> np.ndarray:
        w = self.within
        # the short-term model of each view, counted only when it has a say
        views = self.views if w.short_term else []
        self.models = [ShortTerm(batch, int(v.max()) + 1, w.order) for v in views]
        self.hiddens = self.steps = None
        self.log_probs = self.inner.reset(batch, starts)
        if self.long_term is not None:
            self.long_log_probs = self.long_term.reset(batch, starts)
        if w.dynamic or w.cache:
            if getattr(self.inner, "hidden", None) is None:
                raise BadInput(
                    "dynamic evaluation and the cache need a model with hidden layers (a "
                    "song-rnn); the short-term model serves any",
                    "within-tune",
                )
            units = self.inner.hidden.shape[1]
            self.hiddens, self.steps = _Grown(batch, units), _Grown(batch, self.size)
            self.tokens = _Grown(batch, 1, np.int64)
        return self._combined()

    def feed(self, tokens: np.ndarray) -> np.ndarray:
        tokens = np.asarray(tokens)
        for model, view in zip(self.models, self.views, strict=False):  # none without stm
            model.push(view[tokens])
        if self.hiddens is not None:
            error = np.exp(self.adapted)
            error[np.arange(len(tokens)), tokens] -= 1.0
            self.hiddens.push(self.inner.hidden)
            self.steps.push(error)
            self.tokens.push(tokens[:, None])
        self.log_probs = self.inner.feed(tokens)
        if self.long_term is not None:
            self.long_log_probs = self.long_term.feed(tokens)
        return self._combined()

    def select(self, rows: np.ndarray) -> None:
        self.inner.select(rows)
        self.log_probs, self.adapted = self.log_probs[rows], self.adapted[rows]
        if self.long_term is not None:
            self.long_term.select(rows)
            self.long_log_probs = self.long_log_probs[rows]
        for model in self.models:
            model.select(rows)
        for grown in (self.hiddens, self.steps, self.tokens) if self.hiddens is not None else ():
            grown.select(rows)

    def _combined(self) -> np.ndarray:
        w, log_p = self.within, self.log_probs
        if self.hiddens is not None and self.hiddens.steps:
            h, past = self.inner.hidden, self.hiddens.view
            similarity = np.einsum("bu,btu->bt", h, past)
            if w.dynamic:
                shift = np.einsum("bt,btv->bv", similarity + 1.0, self.steps.view)
                log_p = log_softmax(log_p - w.dynamic * shift)
            self.adapted = log_p
            if w.cache:
                scores = w.theta * similarity
                scores = np.exp(scores - scores.max(1, keepdims=True))
                cache = np.zeros_like(log_p)
                rows = np.repeat(np.arange(len(h)), scores.shape[1])
                np.add.at(cache, (rows, self.tokens.view[..., 0].ravel()), scores.ravel())
                cache /= cache.sum(1, keepdims=True)
                log_p = np.log((1 - w.cache) * np.exp(log_p) + w.cache * cache)
        else:
            self.adapted = log_p
        parts = [(1.0, log_p)]
        if self.long_term is not None:
            parts.append((w.long_term, self.long_log_probs))
        if w.short_term:
            short = np.zeros_like(log_p)
            for model, view in zip(self.models, self.views, strict=True):
                short += np.log(model.probabilities())[:, view]
            parts.append((w.short_term, self._as_model_ends(short, log_p)))
        if len(parts) == 1:
            return log_p
        largest = np.log(self.size)
        weights = [f * _entropy_weight(lp, largest, w.bias) for f, lp in parts]
        mixed = sum(a * lp for a, (_, lp) in zip(weights, parts, strict=True))
        return log_softmax(mixed / sum(weights))

    def _as_model_ends(self, short: np.ndarray, log_p: np.ndarray) -> np.ndarray:
        """The short-term model's song tokens, and the model's own probabilities of the
        specials (<end>, <unk>): a tune so far has never ended, so its own counts would say a
        tune never ends, and the tunes composed with it would not."""
        n = self.song_tokens
        out = log_p.copy()
        rest = np.log1p(-np.minimum(np.exp(log_p[:, n:]).sum(1, keepdims=True), 1 - 1e-12))
        out[:, :n] = log_softmax(short[:, :n]) + rest
        return out


def learner(predictor, within: Within, vocab: Vocabulary, long_term=None):
    """The predictor itself when ``within`` is off, else one that learns within each tune;
    ``long_term``: the training songs' n-gram's predictor, over the same vocabulary."""
    return Learner(predictor, within, vocab, long_term) if within.on else predictor
