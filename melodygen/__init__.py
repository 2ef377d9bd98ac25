"""melodygen: learn melodies written as text and compose MIDI, after the Keras RNN chapter."""

__version__ = "0.7.0"
