"""The measures, checked by hand on known distributions, and on models trained for real."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import NABIYA
from melodygen import training
from melodygen.encoding import SOUNDS, Vocabulary
from melodygen.evaluation import evaluate
from melodygen.kinds.window import STATEFUL
from melodygen.notation import LENGTH_CLASSES, parse_song, read_song


class Fixed:
    """A predictor that always gives the same distribution: the measures by hand."""

    def __init__(self, p):
        self.log_p = np.log(np.asarray(p, float))

    def reset(self, batch=1, starts=None):
        self.batch = batch
        return np.repeat(self.log_p[None], batch, axis=0)

    def feed(self, tokens):
        return self.reset(self.batch)


def test_measures_by_hand():
    vocab = Vocabulary(("c4", "c8", "d4", "r4", "<end>", "<unk>"))
    p = [0.3, 0.1, 0.2, 0.1, 0.1, 0.2]
    model = SimpleNamespace(given=0, vocab=vocab, predictor=lambda: Fixed(p))
    # c8; r4; an unseen e4 (E4: a pitch no token has)
    m = evaluate(model, [parse_song("c8 r4 e4")]).overall
    unknown = 0.2
    bits = [-math.log2(0.1), -math.log2(0.1), -math.log2(unknown / SOUNDS)]
    assert m.bits_per_token == pytest.approx(np.mean(bits))
    notes = 0.6 + unknown * 128 / 129  # every note token, and <unk>'s share of the notes
    pitch = [-math.log2((0.4 + unknown / 129) / notes), -math.log2((unknown / 129) / notes)]
    assert m.pitch_bits_per_note == pytest.approx(np.mean(pitch))
    sounds = 0.7 + unknown  # <end> has no length
    lengths = len(LENGTH_CLASSES)  # <unk> stands for every written length
    quarter, eighth = (0.6 + unknown / lengths) / sounds, (0.1 + unknown / lengths) / sounds
    assert m.duration_bits_per_token == pytest.approx(
        np.mean([-math.log2(eighth), -math.log2(quarter), -math.log2(quarter)])
    )
    assert m.loss == pytest.approx(np.mean([-math.log(0.1), -math.log(0.1), -math.log(0.2)]))
    assert m.one_step_correct == 0 and m.accuracy == 0  # the likeliest is always c4
    assert (m.songs, m.tokens, m.notes, m.unseen_tokens, m.unseen_pitches) == (1, 3, 2, 1, 1)
    c4 = evaluate(model, [parse_song("c4 c4")]).overall
    assert c4.accuracy == 1 and c4.full_song_correct == 2


def test_a_stateful_model_trained_to_perfection_on_nabiya(tmp_path):
    """The chapter's result through the measures: accuracy 1.0 on the one-step windows, the
    whole song reproduced, and a finite bits_per_token over all 54 tokens (the first four from
    the start-of-song context)."""
    song = read_song(NABIYA)
    spec = STATEFUL.spec.replace(units=48, epochs=600, until_perfect=True)
    trained = training.train(STATEFUL, spec, [song], seed=1)
    assert trained.history.perfect_at == trained.history.epochs_run < 600
    m = evaluate(trained.model, [song]).overall
    assert m.accuracy == 1.0 and m.predictions == 50 and m.full_song_reproduced
    assert m.tokens == 54 and math.isfinite(m.bits_per_token) and m.bits_per_token > 0
