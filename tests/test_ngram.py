"""The n-gram kind: its smoothing against a slow restatement of the definition, its two ways of
answering (whole songs, one token at a time), and its model directory."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from melodygen.kinds import ngram


def synthetic(n_songs: int, symbols: int, seed: int) -> list[list[int]]:
    """Songs of ids 0..symbols-1 with some structure (a random walk), lengths 1 to 30."""
    rng = np.random.default_rng(seed)
    songs = []
    for _ in range(n_songs):
        x = [int(rng.integers(symbols))]
        for _ in range(int(rng.integers(0, 30))):
            x.append(int((x[-1] + rng.integers(-1, 2)) % symbols))
        songs.append(x)
    return songs


def slow_distributions(tables, V, end, train, test):
    """Interpolated modified Kneser-Ney spelled out with dicts: one distribution per position
    of the test songs (each token, then <end>)."""
    N = (len(tables) - 1) // 3
    discounts, start = tables[-1].astype(np.float64), V
    raw = [collections.Counter() for _ in range(N + 1)]
    for s in train:
        padded = [start] * (N - 1) + list(s) + [end]
        for t in range(N - 1, len(padded)):
            for m in range(1, N + 1):
                raw[m][tuple(padded[t - m + 1 : t + 1])] += 1
    used = [None]
    for m in range(1, N + 1):
        if m == N:
            used.append(dict(raw[m]))
            continue
        left = collections.Counter(g[1:] for g in raw[m + 1])  # distinct left extensions
        used.append({g: (c if g[0] == start else left[g]) for g, c in raw[m].items()})
    children = [collections.defaultdict(dict) for _ in range(N + 1)]
    for m in range(1, N + 1):
        for g, c in used[m].items():
            if c > 0:
                children[m][g[:-1]][g[-1]] = c
    out = []
    for s in test:
        padded = [start] * (N - 1) + list(s) + [end]
        for t in range(N - 1, len(padded)):
            p = np.full(V, 1.0 / V)
            for m in range(1, N + 1):
                seen = children[m].get(tuple(padded[t - m + 1 : t]), {})
                if not seen:
                    continue
                total = sum(seen.values())
                d = {w: min(discounts[m - 1][min(c, 3) - 1], c) for w, c in seen.items()}
                p = sum(d.values()) / total * p
                for w, c in seen.items():
                    p[w] += (c - d[w]) / total
            out.append(p)
    return np.array(out)


def stepped(tables: ngram.Tables, songs) -> np.ndarray:
    """The distribution before each token and after the last, one token at a time."""
    out = []
    for song in songs:
        state = tables.start(1)
        for x in [*song, None]:
            out.append(tables.distributions(state)[0])
            if x is not None:
                state = tables.advance(state, np.array([x]))
    return np.array(out)


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_interpolated_kneser_ney_matches_its_definition(order):
    V = 9  # 7 song symbols, <end> (7) and <unk> (8)
    train, test = synthetic(60, 7, 0), synthetic(20, 7, 1)
    test[0] = [8, 0, 1, 8, 2]  # <unk> in the context
    tables = ngram.count(train, V, 7, order)
    fast = stepped(ngram.Tables(tables, V), test)
    slow = slow_distributions(tables, V, 7, train, test)
    np.testing.assert_allclose(fast, slow, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(fast.sum(axis=1), 1.0, rtol=1e-12)
    assert (fast > 0).all()  # every symbol, <unk> included, keeps some probability
    assert ngram.check(tables, V) == order


def test_discounts_follow_chen_and_goodman():
    counts = np.array([1] * 10 + [2] * 5 + [3] * 3 + [4] * 2 + [9])  # n1..n4 = 10, 5, 3, 2
    expected = [1 - 2 * 0.5 * 5 / 10, 2 - 3 * 0.5 * 3 / 5, 3 - 4 * 0.5 * 2 / 3]  # Y = 0.5
    np.testing.assert_allclose(ngram._discounts(counts), expected)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.__setitem__(1, t[1] + 100), "out of range"),  # a symbol past the alphabet
        (lambda t: t.__setitem__(0, -t[0] - 1), "out of range or out of order"),
        (lambda t: t.__setitem__(2, t[2].astype(np.float32)), "must be integers"),
        (lambda t: t.pop(), "3 arrays per order"),
        (lambda t: t.__setitem__(-1, t[-1] * np.nan), "finite"),
    ],
)
def test_untrusted_tables_are_checked(edit, message):
    tables = ngram.count(synthetic(10, 7, 0), 9, 7, 3)
    edit(tables)
    with pytest.raises(ValueError, match=message):
        ngram.check(tables, 9)
