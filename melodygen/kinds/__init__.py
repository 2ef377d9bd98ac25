"""The model kinds by name, and the rule that picks one when none is asked for.

A kind is one module here (kinds/base.py says what it answers); adding one is that module and
one line below. Nothing outside this package names a kind or one of its settings: the command
line, the store and training read them from the kinds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from melodygen.corpus import MIN_SPLIT_SONGS
from melodygen.errors import BadInput
from melodygen.kinds import ngram, song_rnn, song_transformer, window
from melodygen.kinds.base import Kind, Model, Setting, Spec
from melodygen.notation import Song
from melodygen.within import Within

__all__ = ["CHAPTER", "CHAPTER_KINDS", "DEFAULT_RULE", "KINDS", "Kind", "Model", "Setting", "Spec",
           "default_for", "get", "learning"]  # fmt: skip

CHAPTER = (window.MLP, window.LSTM, window.STATEFUL, window.STATEFUL_FEATURES)  # `compare`'s
KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        *CHAPTER,
        ngram.NGRAM,
        song_rnn.SONG_RNN,
        song_transformer.SONG_TRANSFORMER,
    )
}
CHAPTER_KINDS = tuple(kind.name for kind in CHAPTER)


def get(name: str) -> Kind:
    if name not in KINDS:
        raise BadInput(f"no model kind {name!r} (the kinds: {', '.join(KINDS)})", "model")
    return KINDS[name]


# Without --model: a song to learn by heart from fewer than 20 songs; a style to learn from
# more, the built-in model fine-tuned on up to 299 of them, a song-rnn of their own from 300 on
# (benchmarks/few_tunes.py: on han tunes, far from the German ones, a song-rnn trained on 300
# of them alone predicts the others best, 2.015 pitch bits per note against 2.140 fine-tuned;
# on 100, the two are even, 2.149 and 2.157, fine-tuned in a fifth of the time).
FOR_A_CORPUS, FOR_A_SONG = "song-rnn", "stateful"
BUILT_IN_BASE, OWN_STYLE_FROM = "essen", 300  # fine-tuned below OWN_STYLE_FROM songs
DEFAULT_RULE = (
    f"{FOR_A_CORPUS} fine-tuned from the built-in model {BUILT_IN_BASE} from {MIN_SPLIT_SONGS} "
    f"songs on, {FOR_A_CORPUS} from {OWN_STYLE_FROM:,} songs on, else {FOR_A_SONG}"
)


def default_for(songs: int) -> tuple[Kind, str | None]:
    """The kind DEFAULT_RULE names for this many songs, and the model to fine-tune, if any."""
    if songs < MIN_SPLIT_SONGS:
        return KINDS[FOR_A_SONG], None
    return KINDS[FOR_A_CORPUS], BUILT_IN_BASE if songs < OWN_STYLE_FROM else None


def learning(model: Model, within: Within, songs: Sequence[Song]) -> Model:
    """The model learning within each tune as ``within`` says (within.py), beside an n-gram of
    its training ``songs`` where ``within`` asks for one (an n-gram is one already)."""
    long_term = None
    if within.long_term and model.kind is not ngram.NGRAM:
        long_term = ngram.counted(songs, model.vocab)
    return dataclasses.replace(model, within=within, long_term=long_term)
