"""The ``ngram`` kind: a variable-order Markov model over tokens, interpolated modified
Kneser-Ney over symbol ids in pure numpy: the floor every neural model is judged against,
counted in seconds without TensorFlow.

P_m(w | h) = alpha_m(h, w) + gamma_m(h) P_{m-1}(w | h'), where h' is h without its oldest
symbol: every order blends into the one below (PPM's "blending"), down to a uniform
distribution over the V output symbols, so every symbol, ``<unk>`` included, keeps a
probability above zero. alpha subtracts a discount D1, D2 or D3+ (for counts 1, 2, 3 and more;
Chen & Goodman 1998, estimated from each order's count-of-counts) and gamma gives the
subtracted mass to the order below. Orders below the highest count how many distinct symbols
precede an n-gram (continuation counts), except n-grams that begin with ``<start>``.

A song's context starts as order - 1 copies of ``<start>`` (id V, one past the output
symbols, never predicted); ``<end>`` is predicted after its last token.

Storage. One table per order m = 1..order, sorted by ``parent * (V + 1) + symbol``, where
``parent`` is the row of the n-gram's first m-1 symbols in the table of order m-1 (order 0 is
the empty context, row 0). Rows of order m double as the ids of length-m contexts, and the
n-grams that continue a context are one contiguous run of the next table, so a context id is
updated one symbol at a time (``advance``). Tables are plain int arrays, counted with
``np.unique`` over int64 keys without a Python loop over tokens.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from melodygen.encoding import END, UNKNOWN, Vocabulary
from melodygen.kinds.base import Kind, Model, Spec, setting
from melodygen.notation import Song
from melodygen.training import History, Trained
from melodygen.within import Within

CHUNK = 2048  # rows of the (rows, V) work arrays at a time: a few MB, cache-friendly


@dataclass(frozen=True)
class NGramSpec(Spec):
    # 8: the best of 1-10 on a split of the Essen training songs
    order: int = setting(8, "the longest n-gram counted (ORDER - 1 tokens of context)", 1, 64,
                         panel="model")  # fmt: skip


def _stream(seqs: Sequence[Sequence[int]], order: int, end: int, start: int):
    """The songs end to end, each as [<start>] * (order - 1) + ids + [<end>].

    Returns sym (n,) symbols, off (n,) each position's offset within its padded song, and
    is_target (n,) bool, true where a symbol is predicted (tokens and <end>). An m-gram ending
    at position p lies inside one song exactly when off[p] >= m - 1.
    """
    pad = order - 1
    lens = np.array([len(s) for s in seqs], dtype=np.int64) + pad + 1
    n = int(lens.sum())
    off = np.arange(n, dtype=np.int64) - np.repeat(np.cumsum(lens) - lens, lens)
    sym = np.full(n, start, dtype=np.int64)
    is_target = off >= pad
    sym[is_target] = np.concatenate([np.append(np.asarray(s, np.int64), end) for s in seqs])
    return sym, off, is_target


def _expand(lo: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Concatenate the integer ranges [lo[i], lo[i] + lens[i]) without a Python loop."""
    starts = np.cumsum(lens) - lens
    return np.repeat(lo - starts, lens) + np.arange(int(lens.sum()), dtype=np.int64)


def _discounts(counts: np.ndarray) -> np.ndarray:
    """Chen & Goodman's D1, D2, D3+ from the count-of-counts n1..n4 of one order's counts,
    kept below their counts so that a seen n-gram keeps some probability of its own."""
    n = np.bincount(np.minimum(counts[counts > 0], 5), minlength=6)[1:5].astype(np.float64)
    if np.any(n == 0):
        return np.full(3, 0.75)  # too few counts to estimate: the usual default
    y = n[0] / (n[0] + 2 * n[1])
    d = np.array([1 - 2 * y * n[1] / n[0], 2 - 3 * y * n[2] / n[1], 3 - 4 * y * n[3] / n[2]])
    return np.clip(d, 0.05, [0.99, 1.99, 2.99])


def count(seqs: Sequence[Sequence[int]], vocab_size: int, end: int, order: int) -> list[np.ndarray]:
    """The tables of ``seqs`` (id sequences without <end>): for m = 1..order, the int32 arrays
    parent differences (rows,), symbol (rows,) and count (rows,), then the (order, 3)
    discounts: the model's weights, saved as they are."""
    A = vocab_size + 1  # context alphabet: the output symbols and <start>
    sym, off, is_target = _stream(seqs, order, end, vocab_size)
    n = len(sym)
    parent, symbol, raw, begins_start, suffix = [], [], [], [], []
    g_prev = np.zeros(n, dtype=np.int64)  # row of the (m-1)-gram ending at each position
    for m in range(1, order + 1):
        p = np.flatnonzero(off >= m - 1)  # positions whose m-gram lies inside one song
        key = g_prev[p - 1] * A + sym[p]  # (context of m-1 symbols, last symbol)
        uniq, first, inv = np.unique(key, return_index=True, return_inverse=True)
        parent.append(uniq // A)
        symbol.append(uniq % A)
        raw.append(np.bincount(inv[is_target[p]], minlength=len(uniq)))
        at = p[first]  # one position where each m-gram occurs
        begins_start.append(sym[at - (m - 1)] == vocab_size)
        suffix.append(g_prev[at])  # row of its last m-1 symbols in the table of order m-1
        g_prev = np.full(n, -1, dtype=np.int64)
        g_prev[p] = inv
    counts = []
    for m in range(order):
        if m == order - 1:
            counts.append(raw[m])
            continue
        # Continuation count: how many distinct symbols precede the n-gram.
        cont = np.bincount(suffix[m + 1][raw[m + 1] > 0], minlength=len(raw[m]))
        counts.append(np.where(begins_start[m], raw[m], cont))
    discounts = np.array([_discounts(c) for c in counts])
    # Parents are sorted: stored as differences, which compress to almost nothing.
    tables = [(np.diff(parent[m], prepend=0), symbol[m], counts[m]) for m in range(order)]
    # float32, as the model directory stores them: the model trained is the model saved
    return [a.astype(np.int32) for table in tables for a in table] + [discounts.astype(np.float32)]


def check(tables: Sequence[np.ndarray], vocab_size: int) -> int:
    """The order of saved tables; ValueError if they are not tables a model could have written
    (loading must never index out of range on untrusted files)."""
    if (len(tables) - 1) % 3 or len(tables) < 4:
        raise ValueError("an n-gram model has 3 arrays per order and the discounts")
    order = (len(tables) - 1) // 3
    A = vocab_size + 1
    previous = 1  # rows of the table below: order 0 has one, the empty context
    for m in range(order):
        steps, symbol, counts = tables[3 * m : 3 * m + 3]
        if not (steps.ndim == symbol.ndim == counts.ndim == 1) or not (
            len(steps) == len(symbol) == len(counts)
        ):
            raise ValueError(f"the order {m + 1} arrays must be one-dimensional and equal")
        if not all(a.dtype.kind in "iu" for a in (steps, symbol, counts)):
            raise ValueError("n-gram tables must be integers")
        parent = np.cumsum(steps, dtype=np.int64)
        keys = parent * A + symbol
        if len(parent) and (
            steps.min() < 0
            or parent.max() >= previous
            or symbol.min() < 0
            or symbol.max() >= A
            or counts.min() < 0
            or np.any(np.diff(keys) <= 0)
        ):
            raise ValueError(f"the order {m + 1} table is out of range or out of order")
        previous = len(parent)
    discounts = tables[-1]
    if discounts.shape != (order, 3) or not np.isfinite(discounts).all():
        raise ValueError(f"the discounts must be a finite ({order}, 3) array")
    if discounts.min() < 0 or np.any(discounts > [1, 2, 3]):
        raise ValueError("discounts must lie between 0 and their counts")
    return order


class Tables:
    """A counted model, ready to answer: next-symbol distributions of contexts."""

    def __init__(self, tables: Sequence[np.ndarray], vocab_size: int) -> None:
        self.order = (len(tables) - 1) // 3
        self.V, self.A = vocab_size, vocab_size + 1
        N = self.order
        self.parent = [np.cumsum(tables[3 * m], dtype=np.int64) for m in range(N)]
        self.symbol = [np.asarray(tables[3 * m + 1], np.int64) for m in range(N)]
        counts = [np.asarray(tables[3 * m + 2], np.float64) for m in range(N)]
        discounts = np.asarray(tables[-1], np.float64)
        self.keys = [p * self.A + s for p, s in zip(self.parent, self.symbol, strict=True)]
        sizes = [1] + [len(p) for p in self.parent]
        # For contexts of length m = 0..N-1: their continuations (the n-grams of order m+1)
        # run over rows lo..hi of table m+1, with total count T; alpha per n-gram, gamma per
        # context.
        self.lo, self.hi, self.total, self.gamma, self.alpha = [], [], [], [], []
        for m in range(N):
            par, c = self.parent[m], counts[m]
            rows = np.arange(sizes[m])
            self.lo.append(np.searchsorted(par, rows, "left"))
            self.hi.append(np.searchsorted(par, rows, "right"))
            total = np.bincount(par, weights=c, minlength=sizes[m])
            safe = np.where(total > 0, total, 1.0)
            d = discounts[m][np.clip(c, 1, 3).astype(np.int64) - 1]
            d = np.where(c > 0, np.minimum(d, c), 0.0)
            self.alpha.append((c - d) / safe[par])
            self.gamma.append(
                np.where(total > 0, np.bincount(par, weights=d, minlength=sizes[m]) / safe, 1.0)
            )
            self.total.append(total)
        # The two lowest orders as dense rows shared by every query: P1 (A,) for the empty
        # context; P2 (rows of table 1 + 1, A), its last row P1 (for an unseen context).
        uniform = np.zeros((1, self.A))
        uniform[0, : self.V] = 1.0 / self.V
        self.p1 = self._mix(uniform, np.zeros(1, dtype=np.int64), 1)[0]
        if N >= 2:
            p2 = self._mix(np.repeat(self.p1[None], sizes[1], axis=0), np.arange(sizes[1]), 2)
            self.p2 = np.vstack([p2, self.p1[None]])

    def _continuations(self, hist: np.ndarray, m: int):
        """For contexts hist (B,) of m-1 symbols (rows of table m-1, -1 unseen): the rows that
        have continuations, their contexts, and the table-m rows of those continuations."""
        rows = np.flatnonzero(hist >= 0)
        h = hist[rows]
        keep = self.total[m - 1][h] > 0
        rows, h = rows[keep], h[keep]
        lens = self.hi[m - 1][h] - self.lo[m - 1][h]
        return rows, h, lens, _expand(self.lo[m - 1][h], lens)

    def _mix(self, probs: np.ndarray, hist: np.ndarray, m: int) -> np.ndarray:
        """Blend order m into ``probs`` (B, A), the order m-1 distributions, in place."""
        rows, h, lens, idx = self._continuations(hist, m)
        probs[rows] *= self.gamma[m - 1][h][:, None]
        probs[np.repeat(rows, lens), self.symbol[m - 1][idx]] += self.alpha[m - 1][idx]
        return probs

    def distributions(self, hist: np.ndarray) -> np.ndarray:
        """Next-symbol distributions (B, V) of contexts hist (B, order): hist[:, m] is the row
        in table m of the context's last m symbols (-1 if never seen), hist[:, 0] is 0."""
        out = np.empty((len(hist), self.V))
        for s in range(0, len(hist), CHUNK):
            out[s : s + CHUNK] = self._distributions(hist[s : s + CHUNK])
        return out

    def _distributions(self, hist: np.ndarray) -> np.ndarray:
        B, N, A = len(hist), self.order, self.A
        if N == 1:
            return np.repeat(self.p1[None, : self.V], B, axis=0)
        base = self.p2[hist[:, 1]]  # (B, A); an unseen context (-1) gets P1, the last row
        # Top down: P_N = sum over orders m of (the gammas of the orders above m) * alpha_m,
        # plus all the gammas times P_2: sparse scatters and one dense product.
        weight = np.ones(B)
        scatters = []
        for m in range(N, 2, -1):
            rows, h, lens, idx = self._continuations(hist[:, m - 1], m)
            r = np.repeat(rows, lens)
            scatters.append((r * A + self.symbol[m - 1][idx], weight[r] * self.alpha[m - 1][idx]))
            weight[rows] *= self.gamma[m - 1][h]
        base *= weight[:, None]
        flat = base.reshape(-1)
        for where, value in scatters:
            flat[where] += value  # one symbol per n-gram: indices are distinct within an order
        return base[:, : self.V]

    def _lookup(self, m: int, ctx: np.ndarray, sym: np.ndarray) -> np.ndarray:
        """Row in table m of (context row ctx in table m-1, symbol), or -1 if not there."""
        keys = self.keys[m - 1]
        if not len(keys):
            return np.full(len(ctx), -1, dtype=np.int64)
        key = ctx * self.A + sym
        i = np.minimum(np.searchsorted(keys, key), len(keys) - 1)
        return np.where((ctx >= 0) & (keys[i] == key), i, -1)

    def start(self, batch: int) -> np.ndarray:
        """The contexts of ``batch`` songs at their start: (batch, order) rows."""
        state = np.full((batch, self.order), -1, dtype=np.int64)
        state[:, 0] = 0
        for _ in range(self.order - 1):
            state = self.advance(state, np.full(batch, self.V, dtype=np.int64))
        return state

    def advance(self, state: np.ndarray, symbols: np.ndarray) -> np.ndarray:
        """The contexts after appending ``symbols`` (B,) to contexts ``state`` (B, order)."""
        new = np.empty_like(state)
        new[:, 0] = 0
        for m in range(1, self.order):
            new[:, m] = self._lookup(m, state[:, m - 1], np.asarray(symbols, np.int64))
        return new


class NGramPredictor:
    """The n-gram's next-token log-probabilities for a batch of songs read in step."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables

    def reset(self, batch: int = 1, starts=None) -> np.ndarray:
        self.state = self.tables.start(batch)
        return self._predict()

    def feed(self, tokens: np.ndarray) -> np.ndarray:
        self.state = self.tables.advance(self.state, tokens)
        return self._predict()

    def select(self, rows: np.ndarray) -> None:
        self.state = self.state[rows]

    def _predict(self) -> np.ndarray:
        return np.log(self.tables.distributions(self.state))


class NGram(Kind):
    """Counted, not trained: no TensorFlow, no epochs; it learns where tunes end."""

    name, spec, temperature = "ngram", NGramSpec(), 1.0
    specials = (END, UNKNOWN)
    # with IDyOM's short-term model, chosen on the inner split of the Essen training songs:
    # pitch bits per note 2.607 alone, 2.167 with it
    within = Within(short_term=0.35, bias=0.5)
    checkpoints = False  # counted in one pass

    def check_weights(self, weights, spec, vocab_size):
        if check(weights, vocab_size) != spec.order:
            raise ValueError(f"the tables do not hold an order-{spec.order} model")

    def fit(self, songs, spec, run):
        start = time.perf_counter()
        model = counted(songs, self.vocabulary(songs), spec)
        return Trained(model, History(seconds=time.perf_counter() - start))

    def predictor(self, spec, weights, vocab):
        return NGramPredictor(Tables(weights, len(vocab)))

    def describe(self, spec, vocab):
        return (
            f"vocabulary indices: the last {spec.order - 1} tokens, padded with <start> before "
            "the song's first"
        )


NGRAM = NGram()


def counted(songs: Sequence[Song], vocab: Vocabulary, spec: NGramSpec = NGRAM.spec) -> Model:
    """An n-gram of the songs over ``vocab`` (theirs, or another model's, whose predictions
    within-tune learning joins it to: the vocabularies must be one)."""
    indices = [vocab.encode(s.tokens) for s in songs]
    return Model(NGRAM, spec, vocab, tuple(count(indices, len(vocab), vocab.end, spec.order)))
