"""The ``song-rnn`` kind: a whole-song RNN, the field's melody model (Magenta's Melody RNN,
folk-rnn). From a <start> token it reads each token as learned pitch and length embeddings,
through stacked LSTMs with dropout, to a softmax over the vocabulary; it predicts every next
token and the song's end. Beside each token it reads where the song last repeated itself
(Repeats), as Magenta's Lookback RNN reads the bars before: folk tunes repeat their phrases;
and what it is told of the song's start (start_inputs): its meter and where in the bar the
token it predicts starts, so that its tunes keep time, and with ``key`` the song's key.

It trains on batches of whole songs of similar lengths, each in a random key per epoch, read
in chunks (truncated back-propagation) under a tf.distribute strategy, until the held-out loss
stops improving.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from melodygen.encoding import END, POSITIONS, UNKNOWN, Start, Vocabulary, times
from melodygen.encoding import transpose as transpose_notes
from melodygen.kinds import base
from melodygen.kinds.base import Kind, Model, Spec, check_shapes, setting
from melodygen.kinds.layers import log_softmax, lstm_steps
from melodygen.notation import DENOMINATORS, LENGTH_CLASSES, MAX_NUMERATOR, Song
from melodygen.theory import bar_positions, tonic_of
from melodygen.training import EpochLoop, Run, Trained, setup_tensorflow, strategy_for
from melodygen.within import Within

METER_ENCODINGS = ("none", "embedding", "counters", "downbeat")  # SongSpec.meter's choices
SCHEDULES = ("exponential", "cosine")  # SongSpec.schedule's choices


def schedule(default: str):
    return setting(default, "the learning rate by batch: exponential (times decay each epoch) "
                   "or cosine (down to 0 at the end of the epochs asked for: a plan, not a cap)",
                   choices=SCHEDULES, before="exponential")  # fmt: skip


def warmup(default: int):
    return setting(default, "batches over which the learning rate first rises from 0", 0,
                   before=0)  # fmt: skip


@dataclass(frozen=True)
class SongSpec(Spec):
    """Chosen for the time to a good model on the inner split of the Essen training songs
    (`benchmarks/corpus_speed.py --inner`, issue 22): what it lacked was optimizer steps, not
    tokens per second. Chunks of 16 steps (the state still carried from chunk to chunk) give
    four times the steps of chunks of 64 at nearly the same speed, and 32 songs a batch twice
    those of 64; Adam at 0.007, x0.7 an epoch, dropout 0.2 suit those steps. So trained, 192
    units learn as much per epoch as 256 in 2/3 of the time (128 units reach 2.278 pitch bits
    per note as soon, then fall behind: 2.25 where 192 reach 2.24, and stop higher). It trains
    until the held-out loss stops improving, not for the chapter's 2000 epochs; gains under
    0.1% of the loss (min_delta) are noise, not a reason to train on."""

    units: int = setting(192, "LSTM width", 1, 4096, panel="model")
    layers: int = setting(2, "stacked LSTM layers", 1, 8, panel="model")
    embedding: int = setting(64, "input width: 3/4 for the pitch, 1/4 for the length", 2, 1024,
                             panel="model")  # fmt: skip
    epochs: int = base.epochs(100)
    batch: int = setting(32, "songs per batch", 1, 4096)
    learning_rate: float = base.learning_rate(0.007)
    decay: float = setting(0.7, "the learning rate's factor after each epoch (exponential)", 0, 1)
    schedule: str = schedule("exponential")
    warmup: int = warmup(0)
    dropout: float = setting(0.2, "dropout on the inputs and on each LSTM's output", 0, 0.9)
    transpose: tuple[int, int] = setting(
        (-5, 6), "each epoch, move each song by LOW..HIGH semitones (0: none)", -127, 127
    )
    chunk: int = setting(16, "steps per truncated back-propagation", 1, 4096)
    steps: int = setting(
        100,
        "optimizer steps an epoch at least: fewer songs than that fills are read several times "
        "an epoch, so that the schedule (decay, patience) counts steps, not passes",
        1,
        before=1,
    )
    patience: int | None = base.patience(3)
    min_delta: float = base.min_delta(0.002)
    devices: int | None = setting(
        None, "replicas: GPUs, else CPU parts (none: every GPU, or the CPU)", 1
    )
    meter: str = setting(
        "counters",
        "how it is told the song's meter and where in the bar each token starts: embedding (of "
        "the place, in 48ths of a bar), counters (Magenta's binary counters of it), downbeat "
        "(whether the token starts a bar: what folk-rnn's bar lines tell) or none",
        panel="model",
        choices=METER_ENCODINGS,
        before="none",
    )
    key: bool = setting(
        False,
        "told the song's key (its key: header, else the key its notes suggest, moved with the "
        "song when it is transposed; in a quarter of the songs each epoch, not told), so "
        "that it composes in the key asked for",
        panel="model",
    )


# What a song-rnn reads about a token: a pitch id (a MIDI pitch, or one of the ids below) and a
# length id: the 18 plain lengths of notation.LENGTH_CLASSES, then <start>, <unk> and none,
# then the triplet and tied lengths. Models trained before ties and triplets existed have only
# the first 21 rows, and still load: their vocabularies have no other lengths.
REST_ID, START_ID, UNKNOWN_ID, NONE_ID = 128, 129, 130, 131  # NONE: no earlier match
PITCH_IDS = 132
PLAIN_LENGTHS = 18
START_LENGTH, UNKNOWN_LENGTH, NONE_LENGTH = PLAIN_LENGTHS, PLAIN_LENGTHS + 1, PLAIN_LENGTHS + 2
LENGTH_IDS = len(LENGTH_CLASSES) + 3
PLAIN_LENGTH_IDS = PLAIN_LENGTHS + 3
REPEAT_CAP = 16  # a repeat's length is counted up to this many tokens
REPEAT_WIDTH = 8  # the width of a repeat length's embedding
METER_WIDTH = 4  # the width of the embeddings of a meter's numerator and of its denominator
# Where in its bar a token starts, as each encoding tells it: rows and width of its table
PLACES = {"embedding": (POSITIONS, 16), "counters": (POSITIONS, 6), "downbeat": (2, 4)}
KEY_IDS, KEY_WIDTH = 25, 8  # a key's tonic + 12 for minor; 24: not told
KEY_DROPPED = 0.25  # the share of songs a model told the key is not told it, each epoch


def factored_inputs(vocab: Vocabulary) -> np.ndarray:
    """(pitch id, length id) of each vocabulary entry, then of <start> and of "no token" in the
    last two rows: int (vocabulary + 2, 2). A token's pitch and length are learned separately,
    so a rare (pitch, length) pair shares what the common ones teach."""
    ids = np.zeros((len(vocab) + 2, 2), np.int64)
    for i, note in enumerate(vocab.notes):
        length = note.length_class
        ids[i] = (
            (REST_ID if note.is_rest else note.midi_pitch),
            length + 3 * (length >= PLAIN_LENGTHS),
        )
    ids[len(vocab)] = START_ID, START_LENGTH
    if vocab.unknown is not None:
        ids[vocab.unknown] = UNKNOWN_ID, UNKNOWN_LENGTH
    ids[len(vocab) + 1] = NONE_ID, NONE_LENGTH
    return ids


class Repeats:
    """Where a batch of songs, read in step, last repeated itself: the song's own short-term
    memory, which a folk tune's repeated phrases make the best single clue to its next token.

    After tokens a[0..t-1], S(j) is the length of the longest common suffix of a[:j] and a[:t]
    for each earlier j (0 < j < t), capped at REPEAT_CAP; the repeat is the longest one (the
    latest j among equals): the token a[j] that followed it then, and its length (0: none).
    S is updated in place: S'(j) = S(j - 1) + 1 if a[j - 1] is the new token, else 0.
    """

    def __init__(self, batch: int) -> None:
        self.tokens = np.zeros((batch, 0), np.int64)
        self.suffix = np.zeros((batch, 1), np.int64)  # S(j) for j = 0..t-1; S(0) = 0

    def push(self, tokens: np.ndarray) -> None:
        same = self.tokens == np.asarray(tokens)[:, None]  # a[j - 1] == token, j = 1..t
        grown = np.where(same, np.minimum(self.suffix + 1, REPEAT_CAP), 0)
        self.suffix = np.concatenate([np.zeros((len(grown), 1), np.int64), grown], 1)
        self.tokens = np.concatenate([self.tokens, np.asarray(tokens)[:, None]], 1)

    def current(self) -> tuple[np.ndarray, np.ndarray]:
        """(where the token that followed the repeat stands in the song, -1 for none; the
        repeat's length, 0 for none), each (batch,)."""
        t = self.tokens.shape[1]
        if t < 2:
            return np.full(len(self.tokens), -1), np.zeros(len(self.tokens), np.int64)
        candidates = self.suffix[:, 1:t]  # j = 1..t-1
        latest = t - 2 - np.argmax(candidates[:, ::-1], axis=1)  # the last j with the maximum
        length = candidates[np.arange(len(candidates)), latest]
        return np.where(length > 0, latest + 1, -1), length

    def following(self) -> tuple[np.ndarray, np.ndarray]:
        """(the token that followed the repeat, -1 for none; the repeat's length)."""
        at, length = self.current()
        if not self.tokens.shape[1]:
            return at, length
        follow = self.tokens[np.arange(len(at)), np.maximum(at, 0)]
        return np.where(at >= 0, follow, -1), length

    def select(self, rows: np.ndarray) -> None:
        self.tokens, self.suffix = self.tokens[rows], self.suffix[rows]


def song_inputs(
    table: np.ndarray, previous: np.ndarray, follow: np.ndarray, length: np.ndarray
) -> np.ndarray:
    """Input ids, (..., 5): the previous token's pitch and length, those of the token that
    followed the song's latest repeat (-1: none), and the repeat's length (Repeats).
    ``table``: factored_inputs."""
    return np.concatenate([table[previous], table[follow], length[..., None]], -1)


def counters() -> np.ndarray:
    """Magenta's binary counters of the POSITIONS places of a bar: each bit of the place's
    number as +1 or -1, (POSITIONS, 6); a fixed table, not learned."""
    bits = (np.arange(POSITIONS)[:, None] >> np.arange(PLACES["counters"][1])) & 1
    return (2.0 * bits - 1).astype(np.float32)


def start_inputs(starts: Sequence[Start], at: np.ndarray, spec: SongSpec) -> np.ndarray:
    """Ids (rows, steps, columns) of what the model is told of each row's start: its meter
    (the numerator, the denominator's place in DENOMINATORS) and where in the bar the token to
    predict starts, at times ``at`` (rows, steps) in quarter notes from the song's start; its
    key (key_id)."""
    columns = []
    if spec.meter != "none":
        bar = np.array([[s.bar] for s in starts])
        phase = np.array([[s.phase] for s in starts])
        places = bar_positions(at, bar, phase, POSITIONS)
        if spec.meter == "downbeat":
            places = (places != 0).astype(np.int64)  # 0: the token starts a bar
        meters = np.array([[s.meter[0], DENOMINATORS.index(s.meter[1])] for s in starts])
        columns += [np.broadcast_to(meters[:, None], (*at.shape, 2)), places[..., None]]
    if spec.key:
        keys = np.array([key_id(s.key) for s in starts])
        columns.append(np.broadcast_to(keys[:, None, None], (*at.shape, 1)))
    return np.concatenate(columns, -1) if columns else np.zeros((*at.shape, 0), np.int64)


def key_id(key: str | None, semitones: int = 0) -> int:
    """A key's id, moved by ``semitones``: its tonic, + 12 for a minor key; KEY_IDS - 1 for
    none."""
    if key is None:
        return KEY_IDS - 1
    return (tonic_of(key) + semitones) % 12 + 12 * key[0].islower()


def _embedding_widths(spec: SongSpec) -> tuple[int, int]:
    pitch = max(1, spec.embedding * 3 // 4)
    return pitch, max(1, spec.embedding - pitch)


class LSTMCell:
    """The song model's recurrent layers: Keras's LSTM, and the same step in numpy."""

    name = "lstm"
    states = ("h", "c")  # the state each layer carries, in Keras's order
    arrays = 3  # weight arrays per layer: kernel, recurrent kernel, bias

    def shapes(self, width: int, units: int) -> list[tuple[int, ...]]:
        """One layer's weights, reading ``width`` inputs: gates i, f, c, o."""
        return [(width, 4 * units), (units, 4 * units), (4 * units,)]

    def layer(self, keras, units: int, name: str):
        return keras.layers.LSTM(units, return_sequences=True, return_state=True, name=name)

    def step(self, x: np.ndarray, state: tuple, weights: list[np.ndarray]):
        """(the layer's output, its new state) after one step of x (batch, width)."""
        h, c = lstm_steps(x[:, None], *state, *weights)
        return h, (h, c)


class SongPredictor:
    """A song-rnn read one token at a time: <start> first, then each token fed back."""

    def __init__(self, kind: SongRNN, spec: SongSpec, weights, vocab: Vocabulary) -> None:
        self.spec, self.table, self.start = spec, factored_inputs(vocab), len(vocab)
        self.cell = kind.cell
        self.beats = np.array([n.beats for n in vocab.notes] + [0.0] * len(vocab.specials))
        w = [np.asarray(a, np.float32) for a in weights]
        self.pitch_embedding, self.length_embedding, self.repeat_embedding = w[:3]
        told = len(kind.start_shapes(spec))  # meter numerator, denominator, place; key
        self.start_embeddings = w[3 : 3 + told]
        self.layers = self._body(w[3 + told : -2])
        self.dense, self.dense_bias = w[-2], w[-1]

    def _body(self, w: list[np.ndarray]) -> list[list[np.ndarray]]:
        """Each layer's weights, from those between the input tables and the output layer."""
        n = self.cell.arrays
        return [w[n * i : n * (i + 1)] for i in range(self.spec.layers)]

    def reset(self, batch: int = 1, starts: Sequence[Start] | None = None) -> np.ndarray:
        zeros = np.zeros((batch, self.spec.units), np.float32)
        self.state = [tuple(zeros for _ in self.cell.states) for _ in self.layers]
        self.repeats = Repeats(batch)
        self.starts = list(starts or [Start()] * batch)
        self.time = np.zeros(batch)  # quarter notes from each song's start
        return self._step(np.full(batch, self.start))  # <start>

    def feed(self, tokens: np.ndarray) -> np.ndarray:
        self.repeats.push(tokens)
        self.time = self.time + self.beats[np.asarray(tokens)]
        return self._step(np.asarray(tokens))

    def _step(self, previous: np.ndarray) -> np.ndarray:
        x = self._inputs(previous)
        for i, weights in enumerate(self.layers):
            x, self.state[i] = self.cell.step(x, self.state[i], weights)
        self.hidden = x  # what within-tune learning adapts to (within.py)
        return log_softmax(x, self.dense, self.dense_bias)  # in row blocks: layers.matmul

    def _inputs(self, previous: np.ndarray) -> np.ndarray:
        """What the model reads before the previous token's prediction: (batch, width)."""
        ids = song_inputs(self.table, previous, *self.repeats.following())
        parts = [
            self.pitch_embedding[ids[:, 0]],
            self.length_embedding[ids[:, 1]],
            self.pitch_embedding[ids[:, 2]],
            self.length_embedding[ids[:, 3]],
            self.repeat_embedding[ids[:, 4]],
        ]
        if self.start_embeddings:
            told = start_inputs(self.starts, self.time[:, None], self.spec)[:, 0]
            parts += [table[told[:, i]] for i, table in enumerate(self.start_embeddings)]
        return np.concatenate(parts, 1)

    def select(self, rows: np.ndarray) -> None:
        self.state = [tuple(s[rows] for s in state) for state in self.state]
        self.repeats.select(rows)
        self.starts = [self.starts[r] for r in rows]
        self.time, self.hidden = self.time[rows], self.hidden[rows]


class SongRNN(Kind):
    """Predicts from a song's start and learns where tunes end (the module docstring)."""

    name, spec, temperature = "song-rnn", SongSpec(), 1.0
    specials = (END, UNKNOWN)
    cell = LSTMCell()
    # Joined by IDyOM's two n-grams (the training songs' and the tune's own), chosen on the
    # inner split of the Essen training songs (docs/models.md): pitch bits per note 2.249 alone,
    # 2.090 with the training songs' n-gram, 2.041 with the tune's too
    within = Within(short_term=0.25, long_term=1.0, bias=1.0)

    def state_names(self, spec: SongSpec) -> list[str]:
        """The recurrent state the Keras model takes and returns beside the ids: h_1, c_1..."""
        return [f"{s}_{i + 1}" for i in range(spec.layers) for s in self.cell.states]

    def input_shapes(self, spec: SongSpec, length_ids: int = LENGTH_IDS):
        """The input tables' shapes, and the width of what they give a step together."""
        pitch, length = _embedding_widths(spec)
        shapes: list[tuple[int, ...]] = [
            (PITCH_IDS, pitch),
            (length_ids, length),
            (REPEAT_CAP + 1, REPEAT_WIDTH),
        ]
        shapes += self.start_shapes(spec)
        return shapes, sum(s[1] for s in shapes[:2]) * 2 + sum(s[1] for s in shapes[2:])

    def weight_shapes(self, spec: SongSpec, vocab_size: int, length_ids: int = LENGTH_IDS):
        shapes, width = self.input_shapes(spec, length_ids)
        u = spec.units
        for _ in range(spec.layers):
            shapes += self.cell.shapes(width, u)
            width = u
        return [*shapes, (u, vocab_size), (vocab_size,)]

    def told(self, spec):
        return frozenset(["meter"] * (spec.meter != "none") + ["key"] * spec.key)

    def columns(self, spec: SongSpec) -> int:
        """Input ids per step: song_inputs' 5, then start_inputs'."""
        return 5 + len(self.start_shapes(spec))

    def start_shapes(self, spec: SongSpec) -> list[tuple[int, int]]:
        """The tables of what it is told of a song's start: the meter's numerator, its
        denominator and the place in the bar; the key."""
        shapes = []
        if spec.meter != "none":
            shapes += [(MAX_NUMERATOR + 1, METER_WIDTH), (len(DENOMINATORS), METER_WIDTH),
                       PLACES[spec.meter]]  # fmt: skip
        return shapes + [(KEY_IDS, KEY_WIDTH)] * spec.key

    def check_weights(self, weights, spec, vocab_size):
        """A model trained before ties and triplets has PLAIN_LENGTH_IDS rows of lengths; its
        vocabulary has no other lengths, so it fits as well."""
        old = len(weights) > 1 and weights[1].shape[0] == PLAIN_LENGTH_IDS
        shapes = self.weight_shapes(spec, vocab_size, PLAIN_LENGTH_IDS if old else LENGTH_IDS)
        check_shapes(self, weights, shapes)

    def build(self, spec: SongSpec, vocab_size: int, dropout: float = 0.0):
        """(input ids (batch, steps, 5) as song_inputs gives them, then each layer's state)
        in, (logits, then each layer's final state) out, so that training can carry the state
        from one chunk of a batch of songs to the next."""
        import keras

        ids = keras.Input(shape=(None, self.columns(spec)), dtype="int32", name="ids")
        states = [keras.Input(shape=(spec.units,), name=name) for name in self.state_names(spec)]
        x = self.embedded(keras, spec, ids)  # before the dropout's seed: the weights' draws
        x = keras.layers.Dropout(dropout, name="dropout_0")(x)
        finals, n = [], len(self.cell.states)
        for i in range(spec.layers):
            layer = self.cell.layer(keras, spec.units, f"{self.cell.name}_{i + 1}")
            x, *final = layer(x, initial_state=states[n * i : n * (i + 1)])
            x = keras.layers.Dropout(dropout, name=f"dropout_{i + 1}")(x)
            finals += final
        logits = keras.layers.Dense(vocab_size, name="next_token")(x)
        return keras.Model([ids, *states], [logits, *finals], name=self.name.replace("-", "_"))

    def embedded(self, keras, spec: SongSpec, ids):
        """The step's input tables' rows side by side (input_shapes), from ids as
        song_inputs and start_inputs give them."""
        pitch_width, length_width = _embedding_widths(spec)
        pitch = keras.layers.Embedding(PITCH_IDS, pitch_width, name="pitch_embedding")
        length = keras.layers.Embedding(LENGTH_IDS, length_width, name="length_embedding")
        repeat = keras.layers.Embedding(REPEAT_CAP + 1, REPEAT_WIDTH, name="repeat_embedding")
        parts = [pitch(ids[..., 0]), length(ids[..., 1]), pitch(ids[..., 2]), length(ids[..., 3]),
                 repeat(ids[..., 4])]  # fmt: skip
        names = ["numerator_embedding", "denominator_embedding", "place_embedding"]
        names = names * (spec.meter != "none") + ["key_embedding"] * spec.key
        for i, (name, (rows, width)) in enumerate(zip(names, self.start_shapes(spec), strict=True)):
            fixed = name == "place_embedding" and spec.meter == "counters"  # not learned
            initializer = keras.initializers.Constant(counters()) if fixed else "uniform"
            layer = keras.layers.Embedding(rows, width, embeddings_initializer=initializer,
                                           trainable=not fixed, name=name)  # fmt: skip
            parts.append(layer(ids[..., 5 + i]))
        return keras.layers.Concatenate(name="inputs")(parts)

    def predictor(self, spec, weights, vocab):
        return SongPredictor(self, spec, weights, vocab)

    def describe(self, spec, vocab):
        return (
            "the previous token's (pitch, length) and those of the token that followed the "
            f"song's latest repeat, and the repeat's length (up to {REPEAT_CAP} tokens), each "
            "through a learned embedding"
        )

    def tuned_spec(self, base: SongSpec) -> SongSpec:
        return base.replace(**FINE_TUNING)

    def fit(self, songs: Sequence[Song], spec: SongSpec, run: Run) -> Trained:
        vocab, variants = song_vocabulary(songs, self.specials, spec.transpose)
        if run.base is not None:  # it keeps predicting every token its base knows
            known = run.base.vocab.tokens[: run.base.vocab.song_tokens]
            vocab = Vocabulary.from_songs([vocab.tokens[: vocab.song_tokens], known],
                                          self.specials)  # fmt: skip
        starts = [Start.of(song, estimate=spec.key) for song in songs]
        strategy = strategy_for(spec.devices, "devices")
        _, keras = setup_tensorflow(single_thread=False)
        keras.utils.set_random_seed(run.seed)
        data = song_data(variants, vocab, starts, spec)
        trainer = SongTrainer(self, spec, run.seed, data, len(vocab), strategy)
        if run.base is not None:
            fresh = trainer.model.get_weights()
            trainer.model.set_weights(grown(run.base, vocab, fresh))

        model_of = functools.partial(Model.of, self, spec, vocab)
        history = trainer.fit(spec.epochs, False, run.on_epochs, run.validator(model_of),
                              spec.patience, spec.min_delta, run.checkpoint)  # fmt: skip
        return Trained(model_of(trainer.model.get_weights()), history, trainer.model)


SONG_RNN = SongRNN()

# What fine-tuning changes of its base's settings (the rest, its sizes above all, it keeps),
# chosen by `benchmarks/few_tunes.py --choose` on training tunes only: Adam at 0.003 predicted
# han tunes best from 30 of them (0.0003: 2.36 pitch bits per note, 0.001: 2.27, 0.003: 2.23,
# 0.01: 2.29), 10 steps an epoch nearly as well as 20 in 60% of the time, and the best epoch
# came by the 9th (20 epochs at most: what fewer than 20 songs, with none held out, train).
# The training settings it was chosen with are kept too, whatever the base was trained with.
FINE_TUNING = {"learning_rate": 0.003, "steps": 10, "epochs": 20, "schedule": "exponential",
               "warmup": 0, "batch": 64, "chunk": 64, "decay": 0.75, "dropout": 0.3}  # fmt: skip


def grown(base: Model, vocab: Vocabulary, fresh: list[np.ndarray]) -> list[np.ndarray]:
    """The base's weights for a model with the vocabulary ``vocab`` (the base's tokens and
    new ones): the output's column of each token the base knows is the base's; a new token's
    is zero, with the base's lowest bias (it starts as unlikely as the rarest it knows). Its
    inputs need nothing new: a token is read as its pitch and its length, which the base's
    tables already hold. ``fresh``: a new model's weights, for rows the base lacks (the tied and
    triplet lengths of a model from before them)."""
    out = [w.copy() for w in fresh]
    for i, w in enumerate(base.weights[:-2]):
        rows = min(len(w), len(out[i]))
        out[i][:rows] = w[:rows]
    kernel, bias = (np.asarray(w, np.float32) for w in base.weights[-2:])
    out[-2][:] = 0
    out[-1][:] = bias.min()
    for i, token in enumerate(vocab.tokens):
        if (j := base.vocab.get(token)) is not None:
            out[-2][:, i], out[-1][i] = kernel[:, j], bias[j]
    return out


@dataclass(frozen=True)
class SongData:
    """Every training song under every transposition allowed, encoded for a song-rnn."""

    inputs: list[list[np.ndarray]]  # per song, per transposition: (length + 1, columns) ids
    targets: list[list[np.ndarray]]  # per song, per transposition: (length + 1,) indices
    lengths: np.ndarray  # (songs,) tokens of each song, <end> included


def song_vocabulary(songs: Sequence[Song], specials: Sequence[str], transpose: tuple[int, int]):
    """The vocabulary of every token a transposition in the range can give a training song,
    so that held-out songs in any key are not "unknown"; and each song's transpositions."""
    variants = []
    for song in songs:
        shifts = range(transpose[0], transpose[1] + 1)
        moved = [transpose_notes(song.notes, k) for k in sorted(shifts, key=abs)]  # 0 first
        variants.append([notes for notes in moved if notes is not None])
    tokens = ([n.token for n in notes] for song in variants for notes in song)
    return Vocabulary.from_songs(tokens, specials), variants


def repeats(songs: Sequence[Sequence[int]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each song and each step (its length + 1: the last predicts <end>), where the token
    that followed its latest repeat stands (-1: none) and the repeat's length (Repeats),
    songs of similar lengths read side by side."""
    out: list = [None] * len(songs)
    order = sorted(range(len(songs)), key=lambda i: len(songs[i]))
    for start in range(0, len(order), 512):
        rows = order[start : start + 512]
        width = max(len(songs[i]) for i in rows)
        padded = np.full((len(rows), width), -2, np.int64)  # never read: after each song's end
        for r, i in enumerate(rows):
            padded[r, : len(songs[i])] = songs[i]
        tracker, steps = Repeats(len(rows)), []
        for t in range(width + 1):
            steps.append(tracker.current())
            if t < width:
                tracker.push(padded[:, t])
        at, length = (np.stack([step[k] for step in steps], 1) for k in (0, 1))
        for r, i in enumerate(rows):
            out[i] = at[r, : len(songs[i]) + 1], length[r, : len(songs[i]) + 1]
    return out


def song_data(
    variants, vocab: Vocabulary, starts: Sequence[Start] = (), spec: SongSpec | None = None
) -> SongData:
    """The songs' input ids and targets under each transposition. A transposition renames
    tokens one to one, so where a song repeats itself is found once, on its own key, and
    keeps its rhythm, so where its tokens fall in the bar (for a model told the meter, each
    song's ``starts``) is found once too; its key moves with it."""
    spec = spec or SongSpec(meter="none")
    table = factored_inputs(vocab)
    indices = [
        [np.array(vocab.encode(n.token for n in notes)) for notes in song] for song in variants
    ]
    found = repeats([song[0] for song in indices])
    inputs, targets = [], []
    for k, (song, (at, length)) in enumerate(zip(indices, found, strict=True)):
        told = np.zeros((len(song[0]) + 1, 0), np.int64)
        if spec.meter != "none" or spec.key:
            begins, ends = times(variants[k][0])
            predicted = np.concatenate([begins, ends[-1:]])  # each token's start, then <end>'s
            told = start_inputs([starts[k]], predicted[None], spec)[0]
        first = next((n.midi_pitch for n in variants[k][0] if not n.is_rest), 0)
        inputs.append([])
        for i, notes in zip(song, variants[k], strict=True):
            previous = np.concatenate([[len(vocab)], i])  # <start> first
            follow = np.where(at >= 0, i[np.maximum(at, 0)], -1)
            moved = told.copy()
            if spec.key:  # the key moves with the song: by its first pitch's move
                shift = next((n.midi_pitch for n in notes if not n.is_rest), 0) - first
                moved[:, -1] = key_id(starts[k].key, shift)
            ids = np.concatenate([song_inputs(table, previous, follow, length), moved], -1)
            inputs[-1].append(ids.astype(np.int32))
        targets.append([np.concatenate([i, [vocab.end]]) for i in song])
    return SongData(inputs, targets, np.array([len(t[0]) for t in targets]))


def batches_per_epoch(songs: int, batch: int, steps: int = 1) -> int:
    """How many batches song_batches yields an epoch."""
    per_pass = math.ceil(songs / batch)
    return math.ceil(steps / per_pass) * per_pass


def learning_rate(spec: SongSpec, epoch: int, batch: int, batches: int) -> float:
    """Adam's rate for the ``batch``-th of an epoch's ``batches``: exponential keeps each
    epoch's rate (spec.decay ** epoch); cosine falls by batch to 0 at the end of spec.epochs
    epochs (Loshchilov and Hutter's SGDR without restarts); either rises linearly over the
    first spec.warmup batches."""
    done = epoch * batches + batch
    if spec.schedule == "cosine":
        progress = min(done / (spec.epochs * batches), 1)
        rate = 0.5 * spec.learning_rate * (1 + math.cos(math.pi * progress))
    else:
        rate = spec.learning_rate * spec.decay**epoch
    return rate * min(1.0, (done + 1) / spec.warmup) if spec.warmup else rate


def song_batches(
    seed: int, epoch: int, data: SongData, batch: int, key: bool = False, steps: int = 1
):
    """One epoch's batches: songs of similar lengths together (little padding), each in one of
    its transpositions, the batches in a shuffled order; all fixed by (seed, epoch). With
    ``key`` (its last column: the key), KEY_DROPPED of the songs are not told their key. Fewer
    batches than ``steps`` are read again (each pass p > 0 fixed by (seed, epoch, p)) until
    there are as many."""
    passes = math.ceil(steps / math.ceil(len(data.lengths) / batch))
    for p in range(passes):
        yield from _pass(np.random.default_rng((seed, epoch, p) if p else (seed, epoch)), data,
                         batch, key)  # fmt: skip


def _pass(rng: np.random.Generator, data: SongData, batch: int, key: bool):
    order = np.lexsort((rng.random(len(data.lengths)), data.lengths))
    batches = [order[i : i + batch] for i in range(0, len(order), batch)]
    rng.shuffle(batches)
    choice = [int(rng.integers(len(v))) for v in data.inputs]
    untold = rng.random(len(data.lengths)) < KEY_DROPPED if key else np.zeros(len(choice), bool)
    for songs in batches:
        width = int(data.lengths[songs].max())
        x = np.zeros((len(songs), width, data.inputs[0][0].shape[1]), np.int32)
        y = np.zeros((len(songs), width), np.int32)
        mask = np.zeros((len(songs), width), np.float32)
        for row, song in enumerate(songs):
            n = data.lengths[song]
            x[row, :n] = data.inputs[song][choice[song]]
            if untold[song]:
                x[row, :n, -1] = KEY_IDS - 1
            y[row, :n] = data.targets[song][choice[song]]
            mask[row, :n] = 1
        yield x, y, mask


class SongTrainer(EpochLoop):
    """Trains a song-rnn on batches of whole songs: each batch read in chunks of ``chunk``
    steps (truncated back-propagation), the recurrent state carried from chunk to chunk; one
    compiled train step, run on every replica of a tf.distribute strategy."""

    max_epochs_per_call = 1

    def __init__(
        self, kind: SongRNN, spec: SongSpec, seed: int, data: SongData, vocab_size: int, strategy
    ) -> None:
        tf, keras = setup_tensorflow(single_thread=False)
        self.tf, self.keras = tf, keras
        self.spec, self.seed, self.data, self.strategy = spec, seed, data, strategy
        self.states = len(kind.state_names(spec))  # state tensors, each (songs, units)
        with strategy.scope():
            self.model = kind.build(spec, vocab_size, dropout=spec.dropout)
            self.optimizer = keras.optimizers.Adam(learning_rate=spec.learning_rate)
            self.optimizer.build(self.model.trainable_variables)
        self.scale = float(spec.batch * spec.chunk)  # a token weighs the same in any chunk
        self._step = tf.function(
            self._distributed_step,
            input_signature=[
                tf.TensorSpec([None, None, kind.columns(spec)], tf.int32),  # (songs, steps, ids)
                tf.TensorSpec([None, None], tf.int32),  # targets
                tf.TensorSpec([None, None], tf.float32),  # 1 for a song's steps, 0 after
                [tf.TensorSpec([None, spec.units], tf.float32)] * self.states,
            ],
        )

    def _replica_step(self, ids, target, mask, states):
        tf, keras = self.tf, self.keras
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            out = self.model([ids, *states], training=True)
            logits, *finals = out if states else [out]  # Keras gives a lone output bare
            nats = keras.losses.sparse_categorical_crossentropy(target, logits, from_logits=True)
            loss = tf.reduce_sum(nats * mask) / self.scale
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        right = tf.cast(tf.argmax(logits, -1, output_type=tf.int32) == target, tf.float32)
        return tf.reduce_sum(nats * mask), tf.reduce_sum(right * mask), finals

    def _distributed_step(self, ids, target, mask, states):
        """The chunk's songs split into contiguous parts, one per replica; the optimizer sums
        their gradients, and their states are gathered back in song order."""
        tf, strategy = self.tf, self.strategy
        replicas = strategy.num_replicas_in_sync
        if replicas == 1:  # nothing to split or gather (6% of the step's time here)
            return strategy.run(self._replica_step, args=(ids, target, mask, states))

        def part(value):
            def mine(ctx):
                n, r = tf.shape(value)[0], ctx.replica_id_in_sync_group
                return value[n * r // replicas : n * (r + 1) // replicas]

            return strategy.experimental_distribute_values_from_function(mine)

        nats, right, finals = strategy.run(
            self._replica_step,
            args=(part(ids), part(target), part(mask), [part(s) for s in states]),
        )
        total = functools.partial(strategy.reduce, tf.distribute.ReduceOp.SUM, axis=None)
        return total(nats), total(right), [strategy.gather(f, axis=0) for f in finals]

    def _epochs(self, first: int, count: int, until_perfect: bool):
        spec = self.spec
        total, right, tokens = 0.0, 0.0, 0.0
        batches = song_batches(self.seed, first, self.data, spec.batch, spec.key, spec.steps)
        count = batches_per_epoch(len(self.data.lengths), spec.batch, spec.steps)
        for b, (x, y, mask) in enumerate(batches):
            self.optimizer.learning_rate.assign(learning_rate(spec, first, b, count))
            for nats, hits in self.batch(x, y, mask):
                total, right = total + nats, right + hits
            tokens += float(mask.sum())
        return [total / tokens], [right / tokens], False

    def batch(self, x, y, mask) -> list[tuple[float, float]]:
        """One batch of songs, chunk by chunk, the state carried from each to the next; each
        chunk's summed loss (nats) and right predictions."""
        states = [self.tf.zeros((len(x), self.spec.units))] * self.states
        out = []
        for t in range(0, x.shape[1], self.spec.chunk):
            part = slice(t, t + self.spec.chunk)
            nats, hits, states = self._step(x[:, part], y[:, part], mask[:, part], states)
            out.append((float(nats), float(hits)))
        return out
