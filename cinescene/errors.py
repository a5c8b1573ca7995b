"""Errors whose message is written for the person at the keyboard.

Anything raised as a :class:`CinesceneError` is expected: bad input, a missing
model, a refused file. The CLI prints its message on one line and exits with 2;
the UI shows it in a ``gr.Error``. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class CinesceneError(Exception):
    """An expected failure; ``str(err)`` is a complete one-line explanation."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        # Messages end up on one terminal line or in one toast, so fold newlines.
        super().__init__(" ".join(str(message).split()))


class InputError(CinesceneError, ValueError):
    """A value given by the user is unusable (wrong size, unreadable file, ...)."""


class ModelNotFoundError(CinesceneError):
    """The requested model is neither local nor reachable on the hub."""
