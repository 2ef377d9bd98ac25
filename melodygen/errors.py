"""The kinds of error library code raises. Only the CLI turns them into exit statuses and names
command-line flags; the library names what was wrong (a file, a line, a parameter)."""

from __future__ import annotations


class MelodygenError(Exception):
    """A problem melodygen reports in one line. ``parameter`` names the input at fault (``seed``,
    ``temperature``...) so the CLI can say which flag it came from."""

    def __init__(self, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


class BadInput(MelodygenError):
    """The user's input cannot be used (a song, a model directory, an option): they can fix it."""


class SystemFailure(MelodygenError):
    """The system failed (disk full, permission lost mid-way): not the input's fault."""


class Interrupted(KeyboardInterrupt):
    """A stop asked for from outside (SIGTERM from a scheduler, ``timeout`` or a container stop),
    raised where Ctrl-C would raise KeyboardInterrupt so the same cleanup runs."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(signal_number)
        self.signal_number = signal_number


def interruption(e: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C or SIGTERM behind ``e``: itself, or one that landed while numpy or TensorFlow
    called back into Python and surfaced as a SystemError caused by it (at any depth)."""
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None
