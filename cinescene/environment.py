"""The process environment: boolean variables read one way, and the libraries' chatter turned down."""

from __future__ import annotations

import os

from .errors import InputError


def env_flag(name: str, default: bool = False) -> bool:
    """A yes/no environment variable, read as accelerate reads its own (1/true/yes/on, 0/false/no/off).

    Anything else is refused by name rather than read as "no": a Space variable set to
    ``ture`` should not silently switch a feature off.
    """
    from accelerate.utils import str_to_bool

    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return bool(str_to_bool(value))
    except ValueError:
        raise InputError(f"environment variable {name}={value!r} is not a yes/no value (use 1/0, true/false, "
                         "yes/no or on/off)") from None


def quiet_libraries() -> None:
    """Keep library chatter ("Couldn't connect to the Hub ...") off the terminal; our errors say it better.

    Must run before diffusers/transformers are imported: they read these once.
    """
    for var in ("DIFFUSERS_VERBOSITY", "TRANSFORMERS_VERBOSITY"):
        os.environ.setdefault(var, "error")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
