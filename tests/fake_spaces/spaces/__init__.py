"""A stand-in for Hugging Face's ``spaces`` package: records every @spaces.GPU call and its duration."""

import json
import os


def GPU(duration=60):  # noqa: N802 - the real package's name
    def decorate(fn):
        def wrapper(*args, **kwargs):
            seconds = duration(*args, **kwargs) if callable(duration) else duration
            with open(os.environ["FAKE_SPACES_LOG"], "a") as log:
                log.write(json.dumps({"function": fn.__name__, "duration": seconds}) + "\n")
            return fn(*args, **kwargs)

        return wrapper

    return decorate
