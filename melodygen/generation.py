"""Composing with any model kind on numpy alone: sampling, and continuing a seed into a Song.

Everything here runs through models.Predictor, so it is written once for every kind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from melodygen.errors import BadInput
from melodygen.models import Model
from melodygen.notation import Note, Song, parse_token

Pick = Callable[[np.ndarray], int]  # next-token log-probabilities -> chosen vocabulary index


def greedy(log_probs: np.ndarray) -> int:
    """The chapter's np.argmax."""
    return int(np.argmax(log_probs))


def sampler(temperature: float, top_k: int = 0, seed: int | None = None) -> Pick:
    """Sample from the distribution sharpened (temperature < 1) or flattened (> 1), keeping
    only the ``top_k`` likeliest when top_k > 0. Temperature 0 is greedy."""
    if temperature < 0:
        raise BadInput(f"must be 0 or more, not {temperature:g}", parameter="temperature")
    if top_k < 0:
        raise BadInput(f"must be 0 or more, not {top_k}", parameter="top_k")
    if temperature == 0:
        return greedy
    rng = np.random.default_rng(seed)

    def pick(log_probs: np.ndarray) -> int:
        logits = np.asarray(log_probs, np.float64) / temperature
        if 0 < top_k < len(logits):
            logits[np.argsort(logits, kind="stable")[:-top_k]] = -np.inf
        p = np.exp(logits - logits.max())
        return int(rng.choice(len(p), p=p / p.sum()))

    return pick


def continue_melody(
    model: Model, seed: Sequence[int], length: int, pick: Pick = greedy, stop_at_end: bool = True
) -> list[int]:
    """The chapter's full-song loop: each prediction is appended and fed back.

    The model reads the whole seed first (a stateful model carries its state through it, as if
    it had predicted it). Returns the seed followed by up to ``length`` tokens: ``<unk>`` is
    never chosen, and ``<end>`` (for a model that learned where songs end) stops the song
    early, unless ``stop_at_end`` is False.
    """
    if not seed and model.window:
        raise BadInput(
            f"a {model.kind.name} model continues a seed of at least {model.window} notes: "
            "give one",
            parameter="seed",
        )
    if len(seed) < model.window:
        raise BadInput(
            f"has {len(seed)} notes; this model needs at least {model.window}", parameter="seed"
        )
    vocab = model.vocab
    never = [i for i in (vocab.unknown, None if stop_at_end else vocab.end) if i is not None]
    predictor = model.predictor()
    log_probs = predictor.reset(1)
    for index in seed:
        log_probs = predictor.feed(np.array([index]))
    melody = list(seed)
    for _ in range(length):
        log_probs[0, never] = -np.inf
        choice = pick(log_probs[0])
        if choice == vocab.end:
            break
        melody.append(choice)
        log_probs = predictor.feed(np.array([choice]))
    return melody


def compose(
    model: Model,
    seed: Sequence[Note],
    length: int,
    pick: Pick = greedy,
    like: Song | None = None,
    name: str = "composed",
) -> Song:
    """Continue ``seed`` by ``length`` tokens; the Song takes its tempo, meter and program from
    ``like`` (a training song)."""
    indices = [model.vocab.index(note.token, parameter="seed") for note in seed]
    melody = continue_melody(model, indices, length, pick)
    return Song(
        tuple(parse_token(model.vocab.tokens[i]) for i in melody),
        name=name,
        title=f"composed by melodygen ({model.kind.name})",
        tempo=like.tempo if like else None,
        time=like.time if like else None,
        program=like.program if like else None,
    )
