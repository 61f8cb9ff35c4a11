"""Errors a user can act on.

Every error raised for bad input derives from :class:`KDBenchError`; the CLI
prints its message (no traceback) and exits with :attr:`KDBenchError.exit_code`.
"""

from __future__ import annotations

from collections.abc import Iterable


class KDBenchError(Exception):
    """Base class of user-facing errors."""

    exit_code = 1


class UnknownNameError(KDBenchError, KeyError):
    """A task, protocol, method, model or dataset name that is not registered."""

    exit_code = 2

    def __init__(self, kind: str, name: str, valid: Iterable[str], hint: str = ""):
        self.kind, self.name, self.valid = kind, name, sorted(valid)
        message = f"unknown {kind} {name!r}; valid {kind}s: {', '.join(self.valid) or '(none)'}"
        super().__init__(message + (f"; {hint}" if hint else ""))

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


class ConfigError(KDBenchError):
    """A configuration that names a key which does not exist or has a bad value."""

    exit_code = 2


class DataError(KDBenchError):
    """A dataset that is missing or malformed; the message names the file."""

    exit_code = 2


class TeacherMismatchError(KDBenchError):
    """A teacher checkpoint whose hash or tensor shapes do not match what is expected."""

    exit_code = 2


class NonFiniteLossError(KDBenchError):
    """Training produced a NaN or infinite loss; the message names the step and terms."""


class Interrupted(KeyboardInterrupt):
    """SIGINT (Ctrl-C) or SIGTERM stopped the run; the CLI exits with ``128 + signum`` (130, 143).

    A :class:`KeyboardInterrupt`, so that it unwinds everything a Ctrl-C would (temporary files
    are removed, no partial record is written) and no ``except Exception`` swallows it.
    """

    def __init__(self, signum: int):
        import signal

        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")


class DuplicateNameError(KDBenchError, KeyError):
    """A name registered twice (a plugin's method named like a built-in): both sources are named."""

    exit_code = 2

    def __init__(self, kind: str, name: str, source: str, existing: str):
        self.kind, self.name, self.source, self.existing = kind, name, source, existing
        super().__init__(f"{kind} {name!r} from {source} is refused: the name is already registered by {existing}")

    def __str__(self) -> str:
        return self.args[0]
