"""What each command does, as one library call: read, compute, write, return the results.

The CLI adds options and rendering around these; they never print. Training imports
TensorFlow (through training.setup_tensorflow) only once the inputs have been read and checked.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import json
import os
import secrets
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from melodygen import (
    audio,
    checkpoint,
    corpus,
    generation,
    kinds,
    midi,
    notation,
    page,
    plots,
    score,
    store,
    theory,
    training,
    transcribe,
    within,
)
from melodygen.corpus import Corpus
from melodygen.encoding import Start, meter_of
from melodygen.errors import BadInput, interruption
from melodygen.evaluation import (
    Evaluation,
    Measures,
    Reference,
    Rhythm,
    Style,
    evaluate,
    folds_of,
    in_key,
    rhythm,
    song_rhythm,
    style,
)
from melodygen.evaluation import per_note as per_note_table
from melodygen.files import (
    atomic_directory,
    check_directory_target,
    check_file_target,
    read_bytes,
    write_atomic,
)
from melodygen.generation import Copied, CopyIndex, Limits, Sampling, draw
from melodygen.kinds import Kind, Model, Spec
from melodygen.notation import Note, Song, format_song
from melodygen.store import Report
from melodygen.theory import DEFAULT_METER
from melodygen.training import History

OUTPUTS = Path("outputs")  # where models go by default, under the working directory
PREDICTIONS_UP_TO = 100  # songs: a corpus's predictions would be one long, unlistenable file


def check_output(
    path: Path, suffixes: Sequence[str], overwrite: bool = True, writable: set[Path] | None = None
) -> None:
    """Refuse, before any work, an output melodygen cannot write or a path it cannot write to
    (``writable``: files.check_file_target's)."""
    if score.suffix_of(path) not in suffixes:
        raise BadInput(
            f"{path}: cannot write {path.suffix or 'a file without an extension'}: "
            f"the output must end in {' or '.join(suffixes)}",
            parameter="out",
        )
    check_file_target(path, overwrite, writable)


def default_dir(paths: Sequence[Path], kind: str) -> Path:
    """outputs/NAME-KIND, NAME the first song file's stem or the directory's name."""
    return OUTPUTS / f"{_name(paths)}-{kind}"


def _name(paths: Sequence[Path]) -> str:
    first = Path(os.path.abspath(paths[0]))
    return first.name if first.is_dir() else first.stem


def _predictions_song(
    songs: Sequence[Song], token_lists: Sequence[Sequence[str]], name: str
) -> Song:
    """The predictions of every song as one song, a whole rest between songs, with the first
    song's tempo, time signature and program."""
    notes: list[Note] = []
    for i, tokens in enumerate(token_lists):
        if i:
            notes.append(Note(None, 1))
        notes += [notation.parse_token(t) for t in tokens]
    first = songs[0]
    return Song(
        tuple(notes),
        name=name,
        title=f"{first.title or first.name} ({name})",
        tempo=first.tempo,
        time=first.time,
        program=first.program,
    )


def prediction_files(
    model: Model, evaluation: Evaluation, scores: Sequence[str] = ()
) -> dict[str, bytes]:
    """one_step.mid/.txt and full_song.mid/.txt: every song's predictions, aligned with it;
    and each of ``scores`` (score.SUFFIXES), the wrong notes red with the true one above."""
    files = {}
    songs = [s.song for s in evaluation.songs]
    for mode in ("one_step", "full_song"):
        tokens = [s.tokens(mode, model.vocab) for s in evaluation.songs]
        song = _predictions_song(songs, tokens, mode)
        files[f"{mode}.txt"] = format_song(song).encode()
        files[f"{mode}.mid"] = midi.song_to_midi(song)
        wrong, start = {}, 0
        for s, predicted in zip(evaluation.songs, tokens, strict=True):
            truth = s.song.tokens
            wrong.update((start + i, truth[i]) for i in range(s.given, len(truth))
                         if predicted[i] != truth[i])  # fmt: skip
            start += len(truth) + 1  # and the rest between songs
        for suffix, data in score.files(song, scores, wrong).items():
            files[f"{mode}{suffix}"] = data
    return files


@dataclass(frozen=True)
class TrainRequest:
    """What `melodygen train` is asked to do: read the songs, fit the kind with the spec."""

    songs: tuple[Path, ...]  # song, MIDI and score files, and directories of them
    kind: Kind | None  # None: the base's kind (fine-tuning)
    spec: Spec | None  # the kind's settings (kind.spec with what the user changed); None: the
    # base's, as the kind fine-tunes it (Kind.tuned_spec), with ``asked`` changed
    seed: int = training.DEFAULT_SEED
    valid: float | None = None  # the held-out share; None: corpus.default_valid
    strict: bool = False  # stop at the first unusable song in a directory
    out: Path | None = None  # the model directory; None: outputs/NAME-KIND
    base: str | Path | None = None  # the model to fine-tune (a directory or a built-in name)
    asked: Mapping[str, Any] = field(default_factory=dict)  # settings asked for, over the base's
    resume: bool = False  # continue the run whose checkpoint is beside ``out`` (checkpoint.py)


def default_kind(paths: Sequence[Path]) -> tuple[Kind, str | None]:
    """The kind to train when none is asked for, by how many songs the paths hold, and the
    model to fine-tune (kinds.DEFAULT_RULE)."""
    return kinds.default_for(len(corpus.song_files(paths)))


@dataclass(frozen=True)
class Trained:
    path: Path
    report: Report
    written: bool = True  # False for a cluster's worker other than the chief, which writes it


def train(
    request: TrainRequest,
    on_epochs: Callable[[str], Callable[[History], None]] | None = None,
    on_skipped: Callable[[list[corpus.Skipped], int], None] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> Trained:
    """Read the songs, hold out a share of them, train the model, measure it on both and write
    the model directory; it becomes the latest model. ``on_skipped`` hears of songs left out
    of directories before training starts; ``on_epochs(label)`` gives what hears of the epochs
    (training.EpochLoop.fit); ``on_note`` hears of a checkpoint not resumed. The epochs are
    kept beside the directory as they are trained (checkpoint.py) until it is written; an
    interrupted run's KeyboardInterrupt carries a note of where to resume from."""
    check_directory_target(request.out or OUTPUTS / "model")  # writable, before any work
    check_directory_target(store.state_dir())  # where the latest model will be recorded
    base, kind, spec, read = _requested(request, on_skipped)
    out = request.out or default_dir(request.songs, kind.name)
    check_directory_target(out)
    step = on_epochs(kind.name) if on_epochs else None
    chief = training.is_chief()
    report = _train_into(out, read, kind, spec, request.seed, request.valid, step,
                         _name(request.songs), base, request.resume, on_note,
                         chief)  # fmt: skip
    if chief:
        store.record_latest(out)
    return Trained(out, report, chief)


def _requested(
    request: TrainRequest, on_skipped: Callable[[list[corpus.Skipped], int], None] | None
) -> tuple[store.Loaded | None, Kind, Spec, Corpus]:
    """The base to fine-tune (if any), the kind and settings to train, and the songs read."""
    base = store.load(request.base) if request.base is not None else None
    kind, spec = tuned(request, base) if base else (request.kind, request.spec)
    assert kind is not None and spec is not None, "a request without a base names its kind"
    read = corpus.read(request.songs, request.strict, lambda song: kind.too_short(song, spec))
    if on_skipped is not None:
        on_skipped(read.skipped, read.files)
    return base, kind, spec, read


@dataclass(frozen=True)
class Listed:
    """A model as `melodygen models` lists it, from its report.json."""

    name: str  # how --model names it: a built-in model's name, or its directory
    role: str  # "built-in" or "latest trained"
    kind: str
    songs: int  # training songs
    held_out: dict | None  # the held-out songs' measures (Measures.to_json), if any
    base: str | None  # the model it was fine-tuned from


def models() -> list[Listed]:
    """The built-in models, then the latest trained one (if any and still there)."""
    found = [(name, "built-in", store.BUILT_IN / name) for name in store.built_in()]
    if (latest := store.latest()) is not None and (latest / store.REPORT_FILE).is_file():
        found.append((str(latest), "latest trained", latest))
    out = []
    for name, role, path in found:
        try:
            report = json.loads(read_bytes(path / store.REPORT_FILE))
            listed = Listed(name, role, str(report["model"]), len(report["songs"]),
                            report["measures"]["validation"], report.get("base"))  # fmt: skip
        except (ValueError, KeyError, TypeError):
            raise BadInput(f"{path / store.REPORT_FILE}: not a melodygen report") from None
        out.append(listed)
    return out


def tuned(request: TrainRequest, base: store.Loaded) -> tuple[Kind, Spec]:
    """The kind and settings to fine-tune ``base`` with: its kind, its sizes, the kind's
    fine-tuning defaults (Kind.tuned_spec) and the settings asked for; BadInput for another
    kind or other sizes."""
    kind = base.meta.kind
    if request.kind is not None and request.kind is not kind:
        raise BadInput(
            f"{base.name} is a {kind.name} model: --from fine-tunes a model of its own kind, "
            f"not a {request.kind.name}",
            "from",
        )
    spec = kind.tuned_spec(base.meta.spec)
    for s in spec.settings():
        was = getattr(base.meta.spec, s.name)
        if s.panel == "model" and request.asked.get(s.name, was) != was:
            raise BadInput(
                f"{base.name} has {s.flag} {was}: a fine-tuned model keeps its base's sizes "
                "and inputs",
                s.name,
            )
    return kind, spec.replace(**request.asked)


def _train_into(
    path: Path,
    read: Corpus,
    kind: Kind,
    spec: Spec,
    seed: int,
    valid: float | None,
    on_epochs: Callable[[History], None] | None,
    name: str,
    base: store.Loaded | None = None,
    resume: bool | None = None,
    on_note: Callable[[str], None] | None = None,
    writes: bool = True,
) -> Report:
    """Train on the songs read (a share held out), from ``base``'s weights if given, measure,
    and write the model directory (unless not ``writes``: a cluster's other workers). With
    ``resume`` not None, the epochs are kept in a checkpoint beside it (``resume``: continue
    from the one there, checked to be of this run)."""
    fraction = corpus.default_valid(read.songs) if valid is None else valid
    songs, held_out = corpus.split(read.songs, fraction)
    from_ = (base.built_in or str(base.path.resolve())) if base else None  # from anywhere
    kept = None
    if resume and not kind.checkpoints:
        raise BadInput(f"a {kind.name} model is trained in one pass: nothing to resume", "resume")
    if resume is not None and kind.checkpoints:
        identity = {
            "kind": kind.name,
            "settings": spec.to_json(),
            "--random-seed": seed,
            "--valid": fraction,
            "--from": from_,
            "songs": f"{len(songs)} ({checkpoint.songs_digest(songs)})",
            "held-out songs": f"{len(held_out)} ({checkpoint.songs_digest(held_out)})",
        }
        kept = checkpoint.Checkpoint(checkpoint.directory_for(path), identity, resume, writes)
        if resume:
            kept.check()
        elif on_note is not None and (said := _found(kept)):
            on_note(said)
    with _resume_noted(kept):  # a stop from here on, until the model is written, says so
        trained = training.train(kind, spec, songs, seed, on_epochs, held_out,
                                 base.model if base else None, kept)  # fmt: skip
        model, history = trained.model, trained.history
        evaluation = evaluate(model, songs)
        report = Report(
            model=kind.name,
            spec=spec,
            songs=[s.name for s in songs],
            epochs_run=history.epochs_run,
            perfect_at=history.perfect_at,
            train_seconds=history.seconds,
            seed=seed,
            training=evaluation.overall,
            validation=evaluate(model, held_out).overall if held_out else None,
            best_epoch=history.best_epoch,
            seconds_per_epoch=history.seconds_per_epoch,
            history={
                "loss": history.loss,
                "accuracy": history.accuracy,
                "valid_loss": history.valid_loss,
                "valid_accuracy": history.valid_accuracy,
                "valid_bits": history.valid_bits,
                "valid_pitch_bits": history.valid_pitch_bits,
                "epoch_seconds": history.epoch_seconds,
            },
            skipped=read.skipped,
            held_out=[corpus.file_name(s) for s in held_out],
            meters={
                f"{a}/{b}": n
                for (a, b), n in collections.Counter(meter_of(s) for s in read.songs).most_common()
            },
            untimed=sum(s.time is None for s in read.songs),
            base=from_,
            peak_memory_mb=training.peak_memory_mb(),
        )
        meta = store.Metadata(
            kind=kind,
            spec=spec,
            vocabulary=model.vocab.tokens,
            songs=tuple(songs),
            seed=seed,
            valid=fraction,
            held_out=tuple(report.held_out),
            base=report.base,
            reference=Reference.of(songs),
        )
        if len(songs) <= 3:
            title = f"{kind.name} on {', '.join(s.name for s in songs)}"
        else:
            title = f"{kind.name} on {name}: {len(songs)} songs" + (
                f", {len(held_out)} held out" if held_out else ""
            )
        files = {
            store.REPORT_FILE: json.dumps(report.to_json(), indent=2).encode() + b"\n",
            store.LOSS_PLOT: plots.loss_plot({kind.name: report.history}, title),
        }
        if len(songs) <= PREDICTIONS_UP_TO:
            files |= prediction_files(model, evaluation)
        if trained.keras_model is not None:
            files[store.MODEL_FILE] = training.keras_file(trained.keras_model)
        if writes:
            store.save(path, meta, model, files)
            if kept is not None:
                kept.remove()  # the run is whole: its epochs are in the model
        return report


def _found(kept: checkpoint.Checkpoint) -> str | None:
    """What a fresh run says of a checkpoint already there (None: there is none)."""
    try:
        found = kept.found()
    except BadInput as e:
        return f"{e}; this run replaces it"
    if found is None:
        return None
    done, other = found
    if other is not None:
        return (f"{kept.directory}: a checkpoint of another run (trained with {other}): this "
                "run replaces it")  # fmt: skip
    return (
        f"{checkpoint.kept(done, kept.directory)} by an interrupted run: pass --resume to "
        f"continue from epoch {done + 1} (this run starts again and replaces them)"
    )


@contextlib.contextmanager
def _resume_noted(kept: checkpoint.Checkpoint | None):
    """Ctrl-C or SIGTERM (or either inside C code, as a SystemError's cause) carries a note of
    the epoch to resume from, when a --resume of this run would continue."""
    try:
        yield
    except BaseException as e:
        stop = interruption(e)
        if stop is not None and kept and kept.writes and (n := kept.resumable()):
            stop.add_note(f"{checkpoint.kept(n, kept.directory)}: the same command with "
                          f"--resume continues from epoch {n + 1}")  # fmt: skip
        raise


@dataclass(frozen=True)
class Compared:
    path: Path
    reports: list[Report]


def compare(
    paths: Sequence[Path],
    settings: Mapping[str, Any],
    seed: int = training.DEFAULT_SEED,
    out: Path | None = None,
    on_epochs: Callable[[str], Callable[[History], None]] | None = None,
    valid: float | None = None,
) -> Compared:
    """Train the chapter's four models on the songs with the same settings (of their spec), as
    the chapter compares them: a model directory each, one plot of the four loss curves."""
    out = out or OUTPUTS / f"compare-{_name(paths)}"
    check_directory_target(out)
    specs = [(kind, kind.spec.replace(**settings)) for kind in kinds.CHAPTER]
    first, spec = specs[0]
    songs = corpus.read(paths, True, lambda song: first.too_short(song, spec))
    reports = []
    with atomic_directory(out) as tmp:
        for kind, spec in specs:
            step = on_epochs(kind.name) if on_epochs else None
            reports.append(
                _train_into(tmp / kind.name, songs, kind, spec, seed, valid, step, _name(paths))
            )
        curves = {r.model: r.history for r in reports}
        title = f"the four models on {_name(paths)}"
        (tmp / "compare.png").write_bytes(plots.loss_plot(curves, title))
        summary = [{k: v for k, v in r.to_json().items() if k != "history"} for r in reports]
        (tmp / "compare.json").write_text(json.dumps(summary, indent=2) + "\n")
    return Compared(out, reports)


@dataclass(frozen=True)
class Evaluated:
    loaded: store.Loaded
    evaluation: Evaluation
    skipped: list[corpus.Skipped]
    out: Path
    written: list[str]
    rhythm: Mapping[str, Rhythm]  # the songs', and that of the model's full-song predictions
    within: within.Within  # what the model learned within each tune as it read it

    @property
    def reference(self) -> Rhythm:
        """What the onsets' distances are measured from: the songs'."""
        return self.rhythm["songs"]


def within_tune_of(kind: Kind, asked: str | None) -> within.Within:
    """What a model of the kind learns within each tune as ``asked`` (within.parse's text;
    None: the kind's default)."""
    return kind.within if asked is None else within.parse(asked, kind.within)


def learning(loaded: store.Loaded, asked: str | None) -> Model:
    """The loaded model, learning within each tune as ``asked`` (within_tune_of)."""
    how = within_tune_of(loaded.meta.kind, asked)
    return kinds.learning(loaded.model, how, loaded.meta.songs)


def evaluate_songs(
    model_dir: Path | None,
    paths: Sequence[Path],
    out: Path | None = None,
    held_out: bool = False,
    pictures: bool = False,
    within_tune: str | None = None,
    per_note: Path | None = None,
    scores: Sequence[str] = (),
) -> Evaluated:
    """The model against songs (default: its training songs; with ``held_out``, only the given
    songs it held out in training), learning within each tune as ``within_tune`` says
    (learning()): the measures, the one-step and full-song predictions as MIDI and text, with
    ``pictures`` a piano roll per song, with ``per_note`` each note's figures as CSV
    (evaluation.per_note), and the predictions in each format of ``scores``."""
    loaded = store.load(model_dir)
    out = out or loaded.path / "evaluate"
    check_directory_target(out)
    if per_note is not None:
        check_output(per_note, (".csv",))
    if paths:
        read = corpus.read(paths)
        songs = read.songs
        if held_out:
            names = set(loaded.meta.held_out)
            songs = [s for s in songs if corpus.file_name(s) in names]
            if not songs:
                raise BadInput(
                    f"none of these songs was held out in training ({len(names)} were)",
                    parameter="held_out",
                )
    elif held_out:
        raise BadInput("name the songs (files or directories) to look in", parameter="held_out")
    else:
        read, songs = Corpus(list(loaded.meta.songs)), list(loaded.meta.songs)
    model = learning(loaded, within_tune)
    evaluation = evaluate(model, songs)
    if per_note is not None:
        write_atomic(per_note, per_note_table(evaluation.songs))
    predicted = [
        dataclasses.replace(
            s.song, notes=tuple(map(notation.parse_token, s.tokens("full_song", model.vocab)))
        )
        for s in evaluation.songs
    ]
    rhythms = {"songs": rhythm(songs), "full-song predictions": rhythm(predicted)}
    files = prediction_files(model, evaluation, scores)
    if pictures:
        for s in evaluation.songs:
            rows = {
                "one-step": s.tokens("one_step", model.vocab),
                "full song": s.tokens("full_song", model.vocab),
            }
            title = f"{model.kind.name} on {s.song.name}"
            files[f"{s.song.name}.png"] = plots.prediction_plot(s.song.tokens, rows, s.given, title)
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        write_atomic(out / name, data)
    return Evaluated(loaded, evaluation, read.skipped, out, sorted(files), rhythms, model.within)


@dataclass(frozen=True)
class CrossValidated:
    out: Path
    kind: Kind
    within: within.Within  # what each fold's model learned within each held-out tune
    folds: list[int]  # each song's fold, the songs as read
    models: list[Path]  # each fold's model directory
    evaluations: list[Evaluation]  # each fold's songs against the model of the other folds'
    skipped: list[corpus.Skipped]

    @property
    def pooled(self) -> Measures:
        return sum((e.overall for e in self.evaluations), Measures())

    def to_json(self) -> dict:
        """The pooled record as `evaluate --json` gives its measures, each fold's, each song's."""
        return {
            "model": self.kind.name,
            "within_tune": self.within.describe(),
            "measures": self.pooled.to_json(),
            "folds": [{"fold": k, "model": str(path), **e.overall.to_json()}
                      for k, (path, e) in enumerate(zip(self.models, self.evaluations,
                                                         strict=True))],
            "songs": [{"name": s.song.name, "fold": k, **s.measures.to_json()}
                      for k, e in enumerate(self.evaluations) for s in e.songs],
        }  # fmt: skip


def crossval(
    request: TrainRequest,
    folds: int = 10,
    within_tune: str | None = None,
    per_note: Path | None = None,
    on_epochs: Callable[[str], Callable[[History], None]] | None = None,
    on_skipped: Callable[[list[corpus.Skipped], int], None] | None = None,
) -> CrossValidated:
    """Cross-validation: for each fold (evaluation.folds_of, by ``request.seed``) a model of
    the request trained on the other folds' songs (a share of them held out for its early
    stopping, as train does), saved as OUT/fold-K, then measured on the fold's songs, learning
    within each as ``within_tune`` says (learning()); OUT/crossval.json and, with
    ``per_note``, each note's figures (evaluation.per_note, with each song's fold)."""
    if per_note is not None:
        check_output(per_note, (".csv",))
    base, kind, spec, read = _requested(request, on_skipped)
    how = within_tune_of(kind, within_tune)  # a mistake in it is found before any training
    if not 2 <= folds <= len(read.songs):
        raise BadInput(f"must be from 2 to the number of songs ({len(read.songs)}), not {folds}",
                       "folds")  # fmt: skip
    out = request.out or OUTPUTS / f"{_name(request.songs)}-{kind.name}-crossval"
    check_directory_target(out)
    fold_of = folds_of([corpus.file_name(s) for s in read.songs], folds, request.seed)
    models, evaluations = [], []
    for k in range(folds):
        train = Corpus([s for s, f in zip(read.songs, fold_of, strict=True) if f != k])
        test = [s for s, f in zip(read.songs, fold_of, strict=True) if f == k]
        path = out / f"fold-{k}"
        step = on_epochs(f"{kind.name} fold {k}") if on_epochs else None
        _train_into(path, train, kind, spec, request.seed, request.valid, step,
                    _name(request.songs), base)  # fmt: skip
        loaded = store.load(path)
        models.append(path)
        evaluations.append(evaluate(kinds.learning(loaded.model, how, loaded.meta.songs), test))
    done = CrossValidated(out, kind, how, fold_of, models, evaluations, read.skipped)
    write_atomic(out / "crossval.json", json.dumps(done.to_json(), indent=2).encode() + b"\n")
    if per_note is not None:
        songs = [s for e in evaluations for s in e.songs]
        write_atomic(per_note, per_note_table(songs, [k for k, e in enumerate(evaluations)
                                                      for _ in e.songs]))  # fmt: skip
    return done


@dataclass(frozen=True)
class Tune:
    number: int  # 1, 2, ...: the random stream it was drawn from
    song: Song  # the seed, then what the model added
    seed: int  # how many of song.notes are the seed
    copied: Copied  # the longest run of added tokens a training song also has
    copied_from: str | None  # that song's name
    style: Style
    rhythm: Rhythm  # how it keeps time (evaluation.rhythm)
    onset_distance: float  # of where its notes start in the bar from the training songs'
    in_key: float | None  # with --key, the share of its notes in the key's scale
    tries: int  # samplings it took to stay within --max-copy
    files: tuple[Path, ...]


@dataclass(frozen=True)
class Composition:
    loaded: store.Loaded
    tunes: list[Tune]
    random_seed: int | None  # the one given, or the one drawn for sampling without one
    audio: str | None = None  # why no WAV was written, when one was asked for and could not be


@dataclass(frozen=True)
class Outputs:
    """Where a composition goes: ``out`` names the MIDI file (a name in another format of
    WRITTEN_TOO: MIDI and that), with -1, -2, ... before the suffix when several tunes are asked
    for; each flag adds a format beside the MIDI."""

    out: Path | None = None
    wav: bool = False
    png: bool = False  # the piano roll
    soundfont: Path | None = None
    txt: bool = False  # the song file: header and tokens, bar lines where the meter puts them
    musicxml: bool = False  # the score (score.py: music21)
    abc: bool = False
    score: bool = False  # engraved by Verovio: .svg and .score.png

    def check_named(self) -> None:
        """Files beside the MIDI need its name: BadInput for a flag without ``out``."""
        asked = (flag for flag in FLAG_OF.values() if getattr(self, flag))
        if self.out is None and (flag := next(asked, None)):
            raise BadInput("writes beside the MIDI file: name it with -o (or --html)", flag)

    def paths(self, number: int, count: int) -> list[Path]:
        """Tune ``number``'s files, the MIDI first."""
        if self.out is None:
            return []
        named = score.suffix_of(self.out)
        midi_path = self.out
        if named in WRITTEN_TOO:
            midi_path = self.out.with_name(self.out.name[: -len(named)] + ".mid")
        if count > 1:
            midi_path = midi_path.with_stem(f"{midi_path.stem}-{number:0{len(str(count))}d}")
        extra = [s for s in (".png", *WRITTEN_TOO)
                 if named == s or (s in FLAG_OF and getattr(self, FLAG_OF[s]))]  # fmt: skip
        given = self.out.name[len(self.out.name) - len(named) :]  # as written: tune.ABC
        return [midi_path] + [midi_path.with_suffix(given if s == named else s) for s in extra]


WRITTEN_TOO = (".wav", ".txt", *score.SUFFIXES)  # an output named so: its MIDI beside it
# a format beside the MIDI: the flag (Outputs' field) that asks for it
FLAG_OF = {".wav": "wav", ".png": "png", ".txt": "txt", ".musicxml": "musicxml", ".abc": "abc",
           ".svg": "score", ".score.png": "score"}  # fmt: skip


def read_seed(text: str = "", path: Path | None = None) -> list[Note]:
    """The seed's notes: tokens as written (``g8,e8,e4,f8``), or a song or MIDI file's, with
    tied notes merged as models learn them."""
    if path is not None:
        if text:
            raise BadInput("give --seed or --seed-file, not both", parameter="seed")
        return list(corpus.read_file(path).notes)
    return list(notation.merge_ties(notation.parse_tokens(text, source="--seed")))


def compose(
    model_dir: Path | None,
    seed: Sequence[Note] = (),
    count: int = 1,
    sampling: Sampling = Sampling(),
    random_seed: int | None = None,
    limits: Limits = Limits(),
    outputs: Outputs = Outputs(),
    header: Mapping[str, object] | None = None,
    max_copy: int | None = None,
    tries: int = generation.MAX_COPY_TRIES,
    key: str | None = None,
    within_tune: str | None = None,
    html: Path | None = None,
) -> Composition:
    """``count`` tunes continuing the seed, tune k drawn from its own random stream (the same
    whatever the count); each checked against the training songs and written as MIDI (and WAV,
    PNG) when ``outputs`` says so. ``header``: tempo, time, program (a number or a General MIDI
    name); each defaults to the training songs' most common. ``key`` (D, Em, Bb...): a model
    told the key composes in it; any other's tunes are moved into it (generation.to_key).
    ``within_tune``: what it learns within each tune as it draws it (learning(); None: nothing:
    learning from its own samples, it repeats them, and its tunes stop ending: docs/cli.md).
    ``html``: a page to listen and choose (page.py), every tune's files beside it."""
    if count < 1:
        raise BadInput(f"must be 1 or more, not {count}", parameter="count")
    writable: set[Path] = set()
    if html is not None:
        check_output(html, (".html",), writable=writable)
        named = outputs.out or html.with_name("tune.mid")
        outputs = dataclasses.replace(outputs, out=named, wav=True, musicxml=True, abc=True,
                                      score=True)  # fmt: skip
    outputs.check_named()
    for number in range(1, count + 1):
        for path in outputs.paths(number, count):
            check_output(path, (*midi.SUFFIXES, ".png", *WRITTEN_TOO), writable=writable)
    given = dict(header or {})
    if given.get("program") is not None:
        given["program"] = midi.program_number(str(given["program"]))
    if isinstance(given.get("time"), str):
        try:
            given["time"] = notation.header_value("time", str(given["time"]))
        except ValueError as e:
            raise BadInput(str(e), parameter="time") from None
    try:
        key = None if key is None else theory.parse_key(key)
    except ValueError as e:
        raise BadInput(str(e), parameter="key") from None
    loaded = store.load(model_dir)
    model, training = learning(loaded, within_tune or "none"), list(loaded.meta.songs)
    sampling = sampling.for_kind(model.kind)
    if count > 1 and sampling.deterministic:
        raise BadInput(
            f"{count} tunes without sampling would all be the same tune: ask for one, or "
            "sample with --temperature above 0",
            parameter="count",
        )
    if random_seed is None and not sampling.deterministic:
        random_seed = secrets.randbelow(2**31)
    told = model.kind.told(model.spec)
    meters = generation.tune_meters(training, count, random_seed, given.get("time"),
                                    "meter" in told)  # fmt: skip
    told_key = key if "key" in told else None
    if limits.in_bars is None:  # a model told the meter keeps its tunes' notes in their bars
        limits = dataclasses.replace(limits, in_bars="meter" in told)
    starts = [Start(meter or DEFAULT_METER, key=told_key) for meter in meters]  # on a bar line
    header = generation.Header(given.get("tempo"), None, given.get("program")).filled(training)
    indices = [model.vocab.index(note.token, parameter="seed") for note in seed]
    copies = CopyIndex(loaded.song_ids)
    drawn = draw(model, indices, count, sampling, random_seed or 0, limits, copies, max_copy,
                 tries, starts)  # fmt: skip
    reference, timing = loaded.reference.histograms, loaded.reference.rhythm
    name = loaded.path.name
    tunes = []
    audio_problem = None
    for k, tune in enumerate(drawn):
        title = f"{name} {k + 1}"  # the MIDI track's name: the same whatever the count
        tune_header = dataclasses.replace(header, time=meters[k])
        song = generation.tune_song(model.vocab, seed, tune.tokens, title, tune_header, key,
                                    transpose=told_key is None)  # fmt: skip
        picture = functools.partial(
            plots.piano_roll, song, len(seed), f"{title} ({model.kind.name})"
        )
        files, problem = _write_song(song, outputs.paths(k + 1, count), outputs.soundfont, picture)
        audio_problem = audio_problem or problem
        copied_from = None if tune.copied.song is None else training[tune.copied.song].name
        kept = song_rhythm(song)
        tunes.append(Tune(k + 1, song, len(seed), tune.copied, copied_from,
                          style(song.notes, reference), kept, kept.onset_distance(timing),
                          None if key is None else in_key(song.notes, key), tune.tries,
                          tuple(files)))  # fmt: skip
    if html is not None:
        about = f"{count} tunes by {name} ({model.kind.name}), random seed {random_seed}"
        write_atomic(html, page.html(f"{name}: {count} tunes", _entries(tunes, html), about))
    return Composition(loaded, tunes, random_seed, audio_problem)


def _entries(tunes: Sequence[Tune], html: Path) -> list[page.Entry]:
    """Each tune as the page shows it: its score, audio, figures and files, by relative URL."""
    entries = []
    for tune in tunes:
        by_suffix = {score.suffix_of(p): p for p in tune.files}
        url = {s: urllib.parse.quote(Path(os.path.relpath(p, html.parent)).as_posix())
               for s, p in by_suffix.items()}  # fmt: skip
        s, r = tune.style, tune.rhythm
        copied = f"{tune.copied.length} tokens" + (
            f" of {tune.copied_from}" if tune.copied_from else "")  # fmt: skip
        meter = "{}/{}".format(*meter_of(tune.song))
        figures = [("longest copied run", copied), ("key", s.scale), ("range", s.range),
                   ("in the scale", f"{s.in_scale:.0%}"),
                   ("meter", f"{meter}, {'whole bars' if r.whole else 'ends inside a bar'}"),
                   ("across a bar line", f"{r.crossing} of {r.notes} notes")]  # fmt: skip
        links = [(label, url[s]) for label, s in (("MIDI", ".mid"), ("MusicXML", ".musicxml"),
                 ("ABC", ".abc"), ("PNG", ".score.png")) if s in url]  # fmt: skip
        svg = by_suffix[".svg"].read_text("utf-8") if ".svg" in by_suffix else None
        entries.append(page.Entry(tune.song.title or f"tune {tune.number}", svg,
                                  url.get(".wav"), links, figures))  # fmt: skip
    return entries


def render(
    song_path: Path, outputs: Outputs, tempo: float | None = None, program: str | None = None
) -> tuple[Song, list[Path], str | None]:
    """The song as MIDI (and WAV); returns it, the files written, and why no WAV was written
    when one was asked for and FluidSynth or a SoundFont is missing."""
    paths = outputs.paths(1, 1)
    for path in paths:
        check_output(path, (*midi.SUFFIXES, *WRITTEN_TOO))
    number = None if program is None else midi.program_number(program)
    song = notation.read_song(song_path)
    return (song, *_write_song(song, paths, outputs.soundfont, tempo=tempo, program=number))


def _write_song(
    song: Song, paths: Sequence[Path], soundfont: Path | None, picture=None, **midi_options
):
    """Write the song to each path by its suffix (MIDI first); returns the paths written and
    why a WAV could not be (FluidSynth or a SoundFont missing), if so."""
    data = midi.song_to_midi(song, **midi_options)
    scores = score.files(song, [s for p in paths if (s := score.suffix_of(p)) in score.SUFFIXES])
    written, problem = [], None
    for path in paths:
        suffix = score.suffix_of(path)
        if suffix == ".wav":
            try:
                write_atomic(path, audio.midi_to_wav(data, soundfont))
            except audio.AudioUnavailable as e:
                problem = str(e)
                continue
        elif suffix == ".txt":
            write_atomic(path, format_song(song))
        elif suffix in scores:
            write_atomic(path, scores[suffix])
        else:
            write_atomic(path, picture() if suffix == ".png" else data)
        written.append(path)
    return written, problem


def import_song(
    path: Path, out: Path, force: bool = False, track: str | None = None, grid: int | None = None
) -> transcribe.Imported:
    """A MIDI, ABC or MusicXML file's melody written as a song file; what was kept and left
    out is in the result's summary."""
    check_output(out, (".txt",), overwrite=force)
    if grid is not None and grid not in transcribe.GRID_VALUES:
        values = ", ".join(map(str, sorted(transcribe.GRID_VALUES)))
        raise BadInput(f"must be one of {values} (16: sixteenths, 12: triplet eighths)", "grid")
    steps = None if grid is None else transcribe.GRID_VALUES[grid]
    imported = transcribe.import_file(path, track, steps)
    write_atomic(out, notation.format_song(imported.song))
    return imported


def write_corpus(
    directory: Path,
    source: str = "essen",
    on_progress: Callable[[int, int], None] | None = None,
) -> corpus.Export:
    """Write a bundled corpus (a name of corpus.CORPORA: the Essen folk songs, the Bach
    chorales) as song files into a new (or empty) directory, whole or not at all."""
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise BadInput(f"{directory}: already exists and is not an empty directory")
    with atomic_directory(directory) as tmp:
        return corpus.CORPORA[source](tmp, on_progress)
