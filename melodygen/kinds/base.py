"""What every model kind answers, and the typed spec its settings live in.

A kind is one module under kinds/: its spec (every setting with its default, range and help),
its vocabulary and inputs, its weights, its Keras build and training (``fit``), its numpy
predictor and the sentence that describes its inputs. The trainer, the store, the CLI,
composing and evaluating use a kind only through ``Kind`` and ``Spec``, so none of them asks
which kind it has: the CLI's options and the store's checks are read from the specs.

Every kind predicts through one interface, a predictor: ``reset(batch)`` gives the
log-probabilities of each song's first token, ``feed(tokens)`` those of the token after, and
``select(rows)`` keeps some songs of the batch. Generation and evaluation are written once
against it.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from melodygen.encoding import UNKNOWN, Vocabulary
from melodygen.errors import BadInput

if TYPE_CHECKING:
    from melodygen.notation import Song
    from melodygen.training import Run, Trained

PANELS = ("model", "training")  # where a setting's option is listed in `train --help`


class SettingError(ValueError):
    """A value a setting cannot take; ``name`` is the setting's."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name} {message}")
        self.name, self.message = name, message


@dataclass(frozen=True)
class Setting:
    """One setting of a spec as the command line and the store see it."""

    name: str
    type: type  # int, float, bool, or tuple: a LOW..HIGH range of ints
    optional: bool  # None is a value (its help says what it means)
    default: Any
    help: str  # one line, lower case, no default in it (the CLI adds the kinds' defaults)
    low: float | None  # the range, inclusive; None: unbounded
    high: float | None
    panel: str  # one of PANELS

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def check(self, value: object) -> None:
        """SettingError unless ``value`` is one this setting can take."""
        if value is None and self.optional:
            return
        if self.type is tuple:
            ok = (
                isinstance(value, tuple)
                and len(value) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
                and value[0] <= value[1]
            )
            parts: Sequence = value if ok else ()  # type: ignore[assignment]
        elif self.type is bool:
            ok, parts = isinstance(value, bool), ()
        else:
            kinds = (int,) if self.type is int else (int, float)
            ok = isinstance(value, kinds) and not isinstance(value, bool)
            parts = (value,) if ok else ()
        if ok and all(
            (self.low is None or v >= self.low) and (self.high is None or v <= self.high)
            for v in parts
        ):
            return
        raise SettingError(self.name, f"must be {self.describe()}, not {value!r:.40}")

    def describe(self) -> str:
        """What values it takes, for an error message."""
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
) -> Any:
    """A field of a spec: its default, the one-line help, its range and its help panel."""
    if panel not in PANELS:
        raise ValueError(f"panel must be one of {PANELS}, not {panel!r}")
    return dataclasses.field(default=default, metadata={"setting": (help, low, high, panel)})


def _field_type(hint: Any) -> tuple[type, bool]:
    """(int, float, bool or tuple; whether None is allowed) from a field's annotation."""
    optional = False
    if isinstance(hint, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional, hint = len(args) < len(typing.get_args(hint)), args[0]
    base = typing.get_origin(hint) or hint
    if base not in (int, float, bool, tuple):
        raise TypeError(f"a setting must be an int, float, bool or (int, int), not {hint}")
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
            help, low, high, panel = f.metadata["setting"]
            kind, optional = _field_type(hints[f.name])
            out.append(Setting(f.name, kind, optional, f.default, help, low, high, panel))
        return tuple(out)

    def replace(self, **values: Any) -> Spec:
        """The spec with some settings changed; BadInput naming the setting if a value is out
        of its range."""
        try:
            return dataclasses.replace(self, **values)  # type: ignore[type-var]
        except SettingError as e:
            raise BadInput(e.message, parameter=e.name) from None

    def to_json(self) -> dict[str, Any]:
        return {
            s.name: list(v) if isinstance(v := getattr(self, s.name), tuple) else v
            for s in self.settings()
        }

    def from_json(self, data: object) -> Spec:
        """The spec saved as ``data`` (to_json's), settings it lacks taken from this one (a
        model saved before a setting existed); ValueError naming what does not fit."""
        if not isinstance(data, Mapping):
            raise ValueError("'spec' must be a JSON object")
        names = {s.name: s for s in self.settings()}
        unknown = set(data) - set(names)
        if unknown:
            raise ValueError(f"unknown setting {sorted(unknown)[0]!r:.40}")
        values = {}
        for name, value in data.items():
            if names[name].type is tuple and isinstance(value, list):
                value = tuple(value)  # JSON has no tuples
            values[name] = value
        return dataclasses.replace(self, **values)  # type: ignore[type-var]


class Predictor(Protocol):
    def reset(self, batch: int = 1) -> np.ndarray: ...
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

    def given(self, spec: Spec) -> int:
        """Tokens a song gives before the one-step predictions count (the chapter's first
        window; 0 for a model that predicts from the song's start)."""
        return 0

    def too_short(self, song: Song, spec: Spec) -> str | None:
        """Why the song is too short to train on, or None."""
        return None

    def check_weights(self, weights: list[np.ndarray], spec: Spec, vocab_size: int) -> None:
        """ValueError unless the weights fit this kind with this spec (a model directory is
        untrusted input)."""
        raise NotImplementedError

    def fit(self, songs: Sequence[Song], spec: Spec, run: Run) -> Trained:
        """Train (or count) a model of the songs; ``run`` says how to report and measure."""
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

    def predictor(self) -> Predictor:
        return self.kind.predictor(self.spec, self.weights, self.vocab)

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


def parse_range(text: str) -> tuple[int, int]:
    """LOW..HIGH as the command line writes a range of whole numbers (-5..6); 0 for none."""
    if text.strip() == "0":
        return (0, 0)
    low, sep, high = text.partition("..")
    try:
        if not sep or int(low) > int(high):
            raise ValueError
        return int(low), int(high)
    except ValueError:
        raise ValueError(f"expected LOW..HIGH such as -5..6, not {text!r}") from None
