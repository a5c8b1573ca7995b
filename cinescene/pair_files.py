"""How published Wan2.2 LoRA pairs name their two files: which half is for which expert, and a name for the pair.

Conventions recognised (sources in docs/wan22_adapters.md):

* ``high_noise`` / ``low_noise`` in the name, with ``_``, ``-`` or nothing between the words, any case:
  ComfyUI's repackaged files (``wan2.2_i2v_lightx2v_4steps_lora_v1_high_noise.safetensors``), ai-toolkit's
  split saves (``NAME_high_noise.safetensors``), lightx2v's folders (``high_noise_model.safetensors``), and
  Civitai uploads (``..._HighNoise``);
* ``HIGH`` / ``LOW`` as a whole upper-case word: Kijai's files
  (``Wan2.2-Lightning_I2V-A14B-4steps-lora_HIGH_fp16.safetensors``);
* for two files given together, also ``high`` / ``low`` as a whole word in any case (``look_high``,
  ``look_low``). Alone, such a word says too little ("high_contrast" is a look, not an expert).

musubi-tuner names nothing itself: its generator takes ``--lora_weight`` (low noise) and
``--lora_weight_high_noise``; a LoRA it trains on both experts at once is one file for both.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .architecture import HIGH_NOISE, LOW_NOISE
from .errors import InputError
from .names import from_filename

# Not inside a word ("slow_noise"), unless it starts one in camel case ("StyleHighNoise").
_NOISE_WORDS = re.compile(r"(?:(?<![a-z])|(?=[HL]))(?i:(high|low)[_\- ]?noise)(?![a-z])")
_UPPER_WORD = re.compile(r"(?<![A-Za-z0-9])(HIGH|LOW)(?![A-Za-z0-9])")
_ANY_WORD = re.compile(r"(?<![A-Za-z0-9])(high|low)(?![A-Za-z0-9])", re.IGNORECASE)
_ROLE = {"high": HIGH_NOISE, "low": LOW_NOISE}
# What is left of "high_noise_model.safetensors" and the like once the expert is taken out: no name at all.
_GENERIC = {"", "model", "lora", "adapter"}


def _mark(stem: str, lenient: bool) -> tuple[str, str] | None:
    """(expert, the stem without the mark) when the stem names exactly one expert."""
    for pattern in (_NOISE_WORDS, _UPPER_WORD, *((_ANY_WORD,) if lenient else ())):
        found = list(pattern.finditer(stem))
        if {m.group(1).lower() for m in found} in ({"high"}, {"low"}):
            match = found[-1]
            rest = stem[:match.start()].rstrip("_-. ") + "_" + stem[match.end():].lstrip("_-. ")
            return _ROLE[match.group(1).lower()], rest.strip("_-. ")
    return None


def marked_expert(filename: str | os.PathLike[str]) -> str | None:
    """The expert a LoRA file's name says it was made for (``high_noise`` / ``low_noise``), or None."""
    mark = _mark(Path(filename).stem, lenient=False)
    return mark[0] if mark else None


def sort_pair(first: str | os.PathLike[str], second: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Two files given together as (high-noise half, low-noise half), by their names; an InputError if they do not
    say."""
    a, b = Path(first), Path(second)
    marks = _mark(a.stem, lenient=True), _mark(b.stem, lenient=True)
    if marks[0] and marks[1] and {marks[0][0], marks[1][0]} == {HIGH_NOISE, LOW_NOISE}:
        return (a, b) if marks[0][0] == HIGH_NOISE else (b, a)
    raise InputError(f"cannot tell which of {a.name} and {b.name} is the high-noise half from their names (high_noise/"
                     "low_noise, HIGH/LOW): give them as --high-noise FILE --low-noise FILE")


def check_roles(high_noise: str | os.PathLike[str], low_noise: str | os.PathLike[str]) -> None:
    """Refuse halves given the wrong way round, when their names say so."""
    for path, given, other in ((Path(high_noise), HIGH_NOISE, LOW_NOISE), (Path(low_noise), LOW_NOISE, HIGH_NOISE)):
        if marked_expert(path) == other:
            raise InputError(f"{path.name} is named as the {other.replace('_', '-')} half but was given as the "
                             f"{given.replace('_', '-')} one")


def pair_name(high_noise: str | os.PathLike[str], low_noise: str | os.PathLike[str]) -> str:
    """A library name for a pair: what its file names share without the expert mark (else its folder's name)."""
    high, low = Path(high_noise), Path(low_noise)
    rests = [mark[1] if (mark := _mark(p.stem, lenient=True)) else p.stem for p in (high, low)]
    shared = os.path.commonprefix(rests).rstrip("_-. ") if rests[0] != rests[1] else rests[0]
    if shared.lower() in _GENERIC:
        shared = high.resolve().parent.name
    return from_filename(shared + ".safetensors", "pair")


def partner(path: str | os.PathLike[str]) -> Path | None:
    """The other half of a pair beside ``path``: same name, the other expert's mark."""
    path = Path(path)
    mark = _mark(path.stem, lenient=False)
    if mark is None or not path.parent.is_dir():
        return None
    for candidate in sorted(path.parent.glob("*.safetensors")):
        other = _mark(candidate.stem, lenient=False)
        if other is not None and other[0] != mark[0] and other[1] == mark[1]:
            return candidate
    return None
