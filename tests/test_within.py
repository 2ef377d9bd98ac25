"""Within-tune learning (within.py): each mechanism against its definition computed here by
hand, and what it does to real models' predictions."""

from __future__ import annotations

import shutil
import subprocess
import sys

import mido
import numpy as np
import pytest

from conftest import FIXTURES
from melodygen import store
from melodygen.encoding import END, UNKNOWN, Vocabulary
from melodygen.errors import BadInput
from melodygen.evaluation import evaluate
from melodygen.kinds import KINDS, learning
from melodygen.kinds.layers import log_softmax
from melodygen.notation import Song, parse_tokens
from melodygen.training import Run
from melodygen.within import OFF, Learner, ShortTerm, Within, parse


def ppm_c(seq: list[int], symbols: int, order: int) -> np.ndarray:
    """P(next symbol | seq), blended PPM-C from order -1 up, by searching seq for each context."""
    p = np.full(symbols, 1.0 / symbols)
    t = len(seq)
    for m in range(min(order, t) + 1):
        counts = np.zeros(symbols)
        for j in range(m, t):
            if seq[j - m : j] == seq[t - m : t]:
                counts[seq[j]] += 1
        if counts.sum():
            escape = (counts > 0).sum()
            p = (counts + escape * p) / (counts.sum() + escape)
    return p


def test_the_short_term_model_is_ppm_c_of_the_tune_so_far():
    rng = np.random.default_rng(0)
    tunes = [list(rng.integers(0, 4, 40)), [1, 2, 3] * 13 + [0], [2] * 40]
    model = ShortTerm(len(tunes), 5, 4)
    for t in range(40):
        got = model.probabilities()
        for row, tune in enumerate(tunes):
            np.testing.assert_allclose(got[row], ppm_c(tune[:t], 5, 4), rtol=1e-12)
        model.push(np.array([tune[t] for tune in tunes]))
    model.select(np.array([2, 0]))
    np.testing.assert_allclose(model.probabilities()[1], ppm_c(tunes[0], 5, 4), rtol=1e-12)


VOCAB = Vocabulary.from_songs([["c4", "r4"]], (END, UNKNOWN))  # the chapter's tokens, r4


class Fixed:
    """A predictor whose next-token logits are ``hidden @ kernel + bias``, ``hidden`` drawn
    afresh each step: what dynamic evaluation and the cache adapt."""

    def __init__(self, kernel: np.ndarray, bias: np.ndarray, seed: int = 1) -> None:
        self.kernel, self.bias, self.rng = kernel, bias, np.random.default_rng(seed)

    def _step(self, batch: int) -> np.ndarray:
        self.hidden = self.rng.normal(size=(batch, self.kernel.shape[0])).astype(np.float32)
        return log_softmax(self.hidden @ self.kernel + self.bias)

    def reset(self, batch=1, starts=None):
        return self._step(batch)

    def feed(self, tokens):
        return self._step(len(tokens))

    def select(self, rows):
        self.hidden = self.hidden[rows]


def fixed(units: int = 3, seed: int = 0) -> Fixed:
    rng = np.random.default_rng(seed)
    return Fixed(rng.normal(size=(units, len(VOCAB))), rng.normal(size=len(VOCAB)))


def test_the_short_term_model_joins_the_model_by_entropy_weighted_geometric_mean():
    tokens = [VOCAB.index(t) for t in ["c4", "d4", "e4", "c4", "d4", "e4", "c4", "r4", "c8"]]
    bias, weight = 1.5, 0.5
    inner, twin = fixed(), fixed()
    learner = Learner(inner, Within(short_term=weight, bias=bias), VOCAB)
    got = learner.reset(1)
    notes, songs = VOCAB.notes, VOCAB.song_tokens
    pitch = ["r" if n.is_rest else str(n.midi_pitch) for n in notes]  # each song token's
    length = [n.length_class for n in notes]
    pitches, lengths = sorted(set(pitch)), sorted(set(length))
    for t in range(len(tokens) + 1):
        model = twin.reset(1)[0] if t == 0 else twin.feed(np.array([tokens[t - 1]]))[0]
        seen = tokens[:t]
        # each view's PPM-C over its symbols, the two specials each a symbol of its own
        p_pitch = ppm_c([pitches.index(pitch[x]) for x in seen], len(pitches) + 2, 8)
        p_length = ppm_c([lengths.index(length[x]) for x in seen], len(lengths) + 2, 8)
        short = np.array([p_pitch[pitches.index(pitch[i])] * p_length[lengths.index(length[i])]
                          for i in range(songs)])  # fmt: skip
        ends = np.exp(model[songs:])  # <end> and <unk> as the model has them
        short = np.log(np.concatenate([short / short.sum() * (1 - ends.sum()), ends]))

        def weight_of(lp):
            return (-(np.exp(lp) * lp).sum() / np.log(len(VOCAB))) ** -bias

        a, b = weight_of(model), weight * weight_of(short)
        expected = log_softmax((a * model + b * short) / (a + b))
        np.testing.assert_allclose(got[0], expected, rtol=1e-9, atol=1e-12)
        if t < len(tokens):
            got = learner.feed(np.array([tokens[t]]))


def test_dynamic_evaluation_is_sgd_on_the_output_layer():
    step, tokens = 0.05, [0, 2, 1, 1, 3, 0]
    inner, twin = fixed(), fixed()
    learner = Learner(inner, Within(dynamic=step), VOCAB)
    got = learner.reset(1)
    kernel, bias = twin.kernel.copy(), twin.bias.copy()
    twin.reset(1)
    for token in tokens:
        h = twin.hidden[0].astype(np.float64)
        expected = log_softmax(h @ kernel + bias)
        np.testing.assert_allclose(got[0], expected, rtol=1e-5, atol=1e-6)
        error = np.exp(expected)
        error[token] -= 1  # the gradient of -log p(token) by the logits
        kernel -= step * np.outer(h, error)
        bias -= step * error
        got = learner.feed(np.array([token]))
        twin.feed(np.array([token]))


def test_the_cache_mixes_in_earlier_steps_by_their_hidden_states_likeness():
    share, theta, tokens = 0.3, 0.7, [0, 2, 1, 2]
    inner, twin = fixed(), fixed()
    learner = Learner(inner, Within(cache=share, theta=theta), VOCAB)
    got, model = learner.reset(1), twin.reset(1)
    past: list[tuple[np.ndarray, int]] = []
    for token in tokens:
        h = twin.hidden[0].astype(np.float64)
        if past:
            cache = np.zeros(len(VOCAB))
            for h_i, x in past:
                cache[x] += np.exp(theta * h @ h_i)
            expected = np.log((1 - share) * np.exp(model[0]) + share * cache / cache.sum())
        else:
            expected = model[0]
        np.testing.assert_allclose(got[0], expected, rtol=1e-5, atol=1e-7)
        past.append((h, token))
        got, model = learner.feed(np.array([token])), twin.feed(np.array([token]))


def test_within_tune_text_is_parsed_against_the_kinds_default():
    default = Within(short_term=0.25, long_term=1.0, bias=1.0)
    assert parse("none", default) == OFF and not OFF.on
    assert parse("default", default) == default
    assert parse("default,bias=2", default) == Within(short_term=0.25, long_term=1.0, bias=2.0)
    assert parse("stm,dynamic=0.01") == Within(short_term=1.0, dynamic=0.01)
    for wrong in ("stm,bias=x", "loud", "viewpoint=chord", "cache=1"):
        with pytest.raises(BadInput):
            parse(wrong)
    with pytest.raises(BadInput, match="need a model with hidden layers"):
        model = KINDS["ngram"].fit([Song(tuple(parse_tokens("c4 d4 e4")))], KINDS["ngram"].spec,
                                   Run(0)).model  # fmt: skip
        learning(model, Within(dynamic=0.01), []).predictor().reset(1)


def test_a_tune_that_repeats_a_new_phrase_is_predicted_better_as_it_is_learned():
    """An ngram of a few songs, on a tune whose phrase none of them has: the second and later
    times the phrase comes, the short-term model has learned it."""
    kind = KINDS["ngram"]
    texts = ("c4 d4 e4 f4 g2", "g4 f4 e4 d4 c2", "e4 e4 d4 d4 c2", "c4 e4 g4 e4 c2")
    songs = [Song(tuple(parse_tokens(t))) for t in texts]
    model = kind.fit(songs, kind.spec, Run(0)).model
    tune = [Song(tuple(parse_tokens("g4 e8 e8 f4 d8 d8 " * 4)))]
    alone = evaluate(learning(model, OFF, songs), tune).songs[0]
    learned = evaluate(learning(model, kind.within, songs), tune).songs[0]
    first, later = slice(0, 6), slice(6, None)
    assert learned.information[later, 0].sum() < 0.5 * alone.information[later, 0].sum()
    np.testing.assert_allclose(learned.information[first, 0].sum(),
                               alone.information[first, 0].sum(), rtol=0.25)  # fmt: skip


def test_a_song_rnn_learning_within_tunes_composes_tune_k_the_same_whatever_n(cli, tmp_path):
    model = tmp_path / "song-rnn"
    shutil.copytree(FIXTURES / "song-rnn", model)
    store.load(model)  # a model from before within-tune learning loads as it is
    common = ("--model", model, "--random-seed", "3", "--within-tune", "default,dynamic,cache",
              "--length", "24")  # fmt: skip
    one = cli("compose", *common, "-o", "one.mid")
    three = cli("compose", *common, "-n", "3", "-o", "three.mid")
    assert one.exit_code == 0 and three.exit_code == 0, one.output + three.output
    assert (tmp_path / "one.mid").read_bytes() == (tmp_path / "three-1.mid").read_bytes()
    notes = [m for m in mido.MidiFile(tmp_path / "three-2.mid") if m.type == "note_on"]
    assert notes


def test_a_beam_search_learning_within_the_tune_is_reproducible(cli, tmp_path):
    """A beam copies and drops rows of the learner's state at every step (Learner.select)."""
    model = tmp_path / "song-rnn"
    shutil.copytree(FIXTURES / "song-rnn", model)
    common = ("--model", model, "--beam", "3", "--within-tune", "default,dynamic,cache",
              "--length", "16", "--no-end")  # fmt: skip
    first = cli("compose", *common, "-o", "a.mid")
    again = cli("compose", *common, "-o", "b.mid")
    assert first.exit_code == 0 and again.exit_code == 0, first.output + again.output
    assert (tmp_path / "a.mid").read_bytes() == (tmp_path / "b.mid").read_bytes()
    assert len([m for m in mido.MidiFile(tmp_path / "a.mid") if m.type == "note_on"]) == 16


def test_within_imports_on_its_own():
    """The kinds import within.py: it must not need them to be imported first."""
    proc = subprocess.run([sys.executable, "-c", "import melodygen.within"], capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()[-500:]
