"""What every model kind answers, and the typed spec its settings live in.

A kind is one module under kinds/: its spec (every setting with its default, range and help),
its vocabulary and inputs, its weights, its Keras build and training (``fit``), its numpy
predictor and the sentence that describes its inputs. The trainer, the store, the CLI,
composing and evaluating use a kind only through ``Kind`` and ``Spec``, so none of them asks
which kind it has: the CLI's options and the store's checks are read from the specs.

Every kind predicts through one interface, a predictor: ``reset(batch, starts)`` gives the
log-probabilities of each song's first token (``starts``: each song's meter and bar lines,
encoding.Start, for a kind told them; None: 4/4 from a bar line), ``feed(tokens)`` those of the
token after, and ``select(rows)`` keeps some songs of the batch. Generation and evaluation are
written once against it.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from melodygen.encoding import UNKNOWN, Start, Vocabulary
from melodygen.errors import BadInput
from melodygen.within import OFF, Within, learner

if TYPE_CHECKING:
    from melodygen.notation import Song
    from melodygen.training import Run, Trained

PANELS = ("model", "training")  # where a setting's option is listed in `train --help`
NOT_SAVED = object()  # a setting's ``before``: a model saved without it had its default


class SettingError(ValueError):
    """A value a setting cannot take; ``name`` is the setting's."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name} {message}")
        self.name, self.message = name, message


@dataclass(frozen=True)
class Setting:
    """One setting of a spec as the command line and the store see it."""

    name: str
    type: type  # int, float, bool, str (one of choices), or tuple: a LOW..HIGH range of ints
    optional: bool  # None is a value (its help says what it means)
    default: Any
    help: str  # one line, lower case, no default in it (the CLI adds the kinds' defaults)
    low: float | None  # the range, inclusive; None: unbounded
    high: float | None
    panel: str  # one of PANELS
    choices: tuple[str, ...] = ()  # a str setting's values
    before: Any = NOT_SAVED  # what a model saved before the setting existed had

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def check(self, value: object) -> None:
        """SettingError unless ``value`` is one this setting can take."""
        if value is None and self.optional:
            return
        wrong = SettingError(self.name, f"must be {self.describe()}, not {value!r:.40}")
        if self.type is str:
            if value not in self.choices:
                raise wrong
            return
        values = (value,)
        if self.type is tuple:  # a range: two whole numbers, the first not above the second
            if not (isinstance(value, tuple) and len(value) == 2):
                raise wrong
            values = value
        element = bool if self.type is bool else int if self.type in (int, tuple) else (int, float)
        for v in values:
            if not isinstance(v, element) or (element is not bool and isinstance(v, bool)):
                raise wrong
            if (self.low is not None and v < self.low) or (self.high is not None and v > self.high):
                raise wrong
        if self.type is tuple and values[0] > values[1]:
            raise wrong

    def parse(self, value: Any) -> Any:
        """A value as the command line gives it (a range as LOW..HIGH text, such as -5..6, or
        0 for none) as the setting holds it; SettingError if it is not one."""
        if self.type is not tuple or not isinstance(value, str):
            return value
        if value.strip() == "0":
            return (0, 0)
        low, sep, high = value.partition("..")
        try:
            if not sep or int(low) > int(high):
                raise ValueError
            return int(low), int(high)
        except ValueError:
            raise SettingError(
                self.name, f"expected LOW..HIGH such as -5..6, not {value!r}"
            ) from None

    def describe(self) -> str:
        """What values it takes, for an error message."""
        if self.type is str:
            return f"one of {', '.join(self.choices)}"
        what = {int: "a whole number", float: "a number", bool: "true or false"}.get(
            self.type, "a range LOW..HIGH of whole numbers"
        )
        if self.low is not None and self.high is not None:
            what += f" from {self.low:g} to {self.high:g}"
        elif self.low is not None:
            what += f" of at least {self.low:g}"
        return what + (" or none" if self.optional else "")


def setting(
    default: Any,
    help: str,
    low: float | None = None,
    high: float | None = None,
    panel: str = "training",
    choices: tuple[str, ...] = (),
    before: Any = NOT_SAVED,
) -> Any:
    """A field of a spec: its default, the one-line help, its range (or its choices) and its
    help panel; ``before``: the value of a model saved before the setting existed, when it is
    not the default (a model directory without it loads with that)."""
    if panel not in PANELS:
        raise ValueError(f"panel must be one of {PANELS}, not {panel!r}")
    about = dict(help=help, low=low, high=high, panel=panel, choices=choices, before=before)
    return dataclasses.field(default=default, metadata=about)


# Settings that mean the same in every kind trained by epochs (training.EpochLoop.fit)
def epochs(default: int) -> Any:
    return setting(default, "epochs at most", 1)


def learning_rate(default: float) -> Any:
    return setting(default, "Adam's learning rate", 0)


def patience(default: int | None) -> Any:
    return setting(default, "stop after N epochs without a better held-out loss; keep the best", 1)


def min_delta(default: float) -> Any:
    return setting(default, "a held-out loss this much lower counts as better", 0)


def _field_type(hint: Any) -> tuple[type, bool]:
    """(int, float, bool or tuple; whether None is allowed) from a field's annotation."""
    optional = False
    if isinstance(hint, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional, hint = len(args) < len(typing.get_args(hint)), args[0]
    base = typing.get_origin(hint) or hint
    if base not in (int, float, bool, str, tuple):
        raise TypeError(f"a setting must be an int, float, bool, str or (int, int), not {hint}")
    return base, optional


class Spec:
    """A kind's settings: subclasses are frozen dataclasses whose every field is a setting(),
    checked against its range when the spec is made (by the CLI, by a test, by loading)."""

    def __post_init__(self) -> None:
        for s in self.settings():
            s.check(getattr(self, s.name))

    @classmethod
    @functools.cache
    def settings(cls) -> tuple[Setting, ...]:
        hints = typing.get_type_hints(cls)
        out = []
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            kind, optional = _field_type(hints[f.name])
            out.append(Setting(f.name, kind, optional, f.default, **f.metadata))
        return tuple(out)

    def replace(self, **values: Any) -> Spec:
        """The spec with some settings changed; BadInput naming the setting if it has no such
        setting or a value is out of its range."""
        names = {s.name for s in self.settings()}
        for name in values.keys() - names:
            raise BadInput(f"is not a setting of this kind ({', '.join(sorted(names))})", name)
        try:
            return dataclasses.replace(self, **values)  # type: ignore[type-var]
        except SettingError as e:
            raise BadInput(e.message, parameter=e.name) from None

    def to_json(self) -> dict[str, Any]:
        return {
            s.name: list(v) if isinstance(v := getattr(self, s.name), tuple) else v
            for s in self.settings()
        }

    def from_json(self, data: dict[str, Any]) -> Spec:
        """The spec saved as ``data`` (to_json's); a setting it lacks (the model was saved
        before the setting existed) has its ``before`` value, else this spec's. ValueError
        naming what does not fit."""
        names = {s.name: s for s in self.settings()}
        unknown = set(data) - set(names)
        if unknown:
            raise ValueError(f"unknown setting {sorted(unknown)[0]!r:.40}")
        values = {
            s.name: s.before
            for s in names.values()
            if s.name not in data and s.before is not NOT_SAVED
        }
        for name, value in data.items():
            if names[name].type is tuple and isinstance(value, list):
                value = tuple(value)  # JSON has no tuples
            values[name] = value
        return dataclasses.replace(self, **values)  # type: ignore[type-var]


class Predictor(Protocol):
    def reset(self, batch: int = 1, starts: Sequence[Start] | None = None) -> np.ndarray: ...
    def feed(self, tokens: np.ndarray) -> np.ndarray: ...
    def select(self, rows: np.ndarray) -> None: ...


class Kind:
    """A model kind. Subclasses set ``name`` and ``spec`` (the defaults of its settings) and
    answer the methods below; that is all anything outside kinds/ knows of it."""

    name: str
    spec: Spec
    specials: tuple[str, ...] = (UNKNOWN,)  # special vocabulary entries it predicts
    # compose's default: the chapter's models replay their song by argmax; a model of a style
    # samples (its argmax repeats a phrase for ever instead of ending the tune)
    temperature: float = 0.0
    # what evaluate learns within each tune by default (within.py); train's held-out
    # measures and early stopping are the model's alone, and compose learns only when asked
    within: Within = OFF
    checkpoints: bool = True  # trained by epochs (training.EpochLoop), which a run can resume

    def given(self, spec: Spec) -> int:
        """Tokens a song gives before the one-step predictions count (the chapter's first
        window; 0 for a model that predicts from the song's start)."""
        return 0

    def told(self, spec: Spec) -> frozenset[str]:
        """What of each song's start (encoding.Start, Predictor.reset) its predictions follow:
        "meter", "key". compose draws each tune's meter and key the model follows, and
        refuses a meter it never saw."""
        return frozenset()

    def too_short(self, song: Song, spec: Spec) -> str | None:
        """Why the song is too short to train on, or None."""
        return None

    def check_weights(self, weights: list[np.ndarray], spec: Spec, vocab_size: int) -> None:
        """ValueError unless the weights fit this kind with this spec (a model directory is
        untrusted input)."""
        raise NotImplementedError

    def vocabulary(self, songs: Sequence[Song]) -> Vocabulary:
        """The training songs' tokens, then the specials the kind predicts."""
        return Vocabulary.from_songs((s.tokens for s in songs), self.specials)

    def tuned_spec(self, base: Spec) -> Spec:
        """The settings to fine-tune a model with these settings (``train --from``): its sizes,
        and what suits a few songs and weights that have learned already."""
        raise BadInput(f"a {self.name} model cannot be fine-tuned: only a song-rnn or a "
                       "song-transformer can", "from")  # fmt: skip

    def fit(self, songs: Sequence[Song], spec: Spec, run: Run) -> Trained:
        """Train (or count) a model of the songs; ``run`` says how to report and measure, and
        with ``run.base`` the model (of this kind and ``spec``'s sizes) to start from."""
        raise NotImplementedError

    def predictor(self, spec: Spec, weights: Sequence[np.ndarray], vocab: Vocabulary) -> Predictor:
        raise NotImplementedError

    def describe(self, spec: Spec, vocab: Vocabulary) -> str:
        """One line for melodygen.json: how a token becomes the model's input."""
        raise NotImplementedError


@dataclass(frozen=True)
class Model:
    """A trained model as numpy arrays: everything composing and evaluating need."""

    kind: Kind
    spec: Spec
    vocab: Vocabulary
    weights: tuple[np.ndarray, ...]
    within: Within = OFF  # what its predictor learns within each tune
    long_term: Model | None = None  # an n-gram of its training songs, for ``within``

    @classmethod
    def of(cls, kind: Kind, spec: Spec, vocab: Vocabulary, weights: Sequence) -> Model:
        """From weights as Keras gives them (a kind's fit, each epoch's validation)."""
        return cls(kind, spec, vocab, tuple(np.asarray(w) for w in weights))

    def predictor(self) -> Predictor:
        inner = self.kind.predictor(self.spec, self.weights, self.vocab)
        long_term = self.long_term.predictor() if self.long_term is not None else None
        return learner(inner, self.within, self.vocab, long_term)

    @property
    def given(self) -> int:
        """Tokens of a song given before the model's one-step predictions count."""
        return self.kind.given(self.spec)


def check_shapes(kind: Kind, weights: Sequence[np.ndarray], shapes: list[tuple[int, ...]]):
    """ValueError unless the weights have these shapes and are finite floats."""
    found = [tuple(a.shape) for a in weights]
    if found != shapes:
        raise ValueError(
            f"weight shapes {found} do not fit a {kind.name} model (expected {shapes})"
        )
    if not all(a.dtype.kind == "f" and np.isfinite(a).all() for a in weights):
        raise ValueError("weights must be finite floating-point numbers")
