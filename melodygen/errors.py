"""The one error type library code raises; the CLI turns it into one line and an exit status."""


class MelodygenError(Exception):
    """A problem the user can act on. ``exit_code`` 2 is bad input or usage, 1 anything else."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
