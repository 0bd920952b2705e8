"""Which contrast an MR series has (T1-, T2- or proton-density-weighted), told from its DICOM tags.

A model learns the tissue contrasts of the MRs it was trained on: in a T1-weighted MR fat is
bright and fluid dark, in a T2-weighted one fluid is brightest and muscle darker. Resampling
cannot turn one into the other, so ``translate`` warns when an input's tags name another
weighting than the model's input contract records (:mod:`.contract`).

The series' own words come first (SeriesDescription, ProtocolName, SequenceName: ``t2_tse_tra``,
``T1 VIBE``), since a scanner's protocol names say what the sequence was set up to show; without
them the timing decides, by the usual spin-echo rules: short TR and short TE give T1 weighting,
long TR and long TE T2, long TR and short TE proton density. Anything else (a gradient echo
with a flip angle that the rules do not cover, missing tags) is unknown, and nothing is said.
"""

from __future__ import annotations

import re

WEIGHTINGS = {"t1": "T1-weighted", "t2": "T2-weighted", "pd": "proton-density-weighted"}
TAGS = {  # the DICOM tags read, by name
    "description": "0008|103e",
    "protocol": "0018|1030",
    "sequence": "0018|0024",
    "tr": "0018|0080",
    "te": "0018|0081",
}
_NAMED = [  # tokens of a protocol name, the explicit ones first: t2_tse, T1-VIBE, PD_FS, T1 FLAIR
    ("t1", re.compile(r"(?<![a-z0-9])t1(?![0-9])", re.IGNORECASE)),
    ("t2", re.compile(r"(?<![a-z0-9])t2(?![0-9])", re.IGNORECASE)),
    ("pd", re.compile(r"(?<![a-z0-9])pdw?(?![a-z0-9])", re.IGNORECASE)),
    ("t2", re.compile(r"(?<![a-z0-9])(flair|stir|haste)(?![a-z0-9])", re.IGNORECASE)),
    ("t1", re.compile(r"(?<![a-z0-9])(mprage|vibe|flash)(?![a-z0-9])", re.IGNORECASE)),
]
SHORT_TR, LONG_TR = 800.0, 1500.0  # ms
SHORT_TE, LONG_TE = 30.0, 60.0  # ms


def weighting_from_tags(tags: dict[str, str]) -> tuple[str, str]:
    """(``t1`` | ``t2`` | ``pd`` | ``""``, why) from the series' tags keyed as in :data:`TAGS`."""
    for key in ("description", "protocol", "sequence"):
        text = tags.get(key, "").strip()
        for weighting, pattern in _NAMED:
            if pattern.search(text):
                return weighting, f"{key} {text!r}"
    tr, te = _number(tags.get("tr")), _number(tags.get("te"))
    if tr is None or te is None:
        return "", ""
    timing = f"TR {tr:g} ms, TE {te:g} ms"
    if tr <= SHORT_TR and te <= SHORT_TE:
        return "t1", timing
    if tr >= LONG_TR and te >= LONG_TE:
        return "t2", timing
    if tr >= LONG_TR and te <= SHORT_TE:
        return "pd", timing
    return "", ""


def _number(text: str | None) -> float | None:
    try:
        return float(str(text).split("\\")[0])
    except ValueError:
        return None
