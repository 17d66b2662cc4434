"""Unit conversions for doses, body weight, serum creatinine and timing periods.

Units arrive as UCUM codes ("mg", "[lb_av]", "umol/L") or as free text ("milligram(s)", "lbs").
Matching is case-insensitive and ignores spaces, because EHR unit text is not disciplined.
Every function returns None for a unit it does not know, a non-number or a negative value:
a wrong conversion in a dose check is worse than none. Converted values are rounded to 6
significant digits, as a person converting by hand would write them (0.07 g is 70 mg, not
70.00000000000001), so a converted value exactly at a threshold stays on its side.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from ._json import as_number, as_written

# Creatinine: 1 mg/dL = 88.4 umol/L (molar mass 113.12 g/mol).
CREATININE_UMOL_PER_MG_DL = 88.4
LB_IN_KG = 0.45359237

_MICRO = ("µ", "μ")  # micro sign U+00B5 and Greek small mu U+03BC


def normalise_unit(unit: Any) -> str | None:
    """Lower-case unit text with spaces removed and micro signs spelled "u"; None if not text."""
    if not isinstance(unit, str):
        return None
    return _normalised(unit)


@lru_cache(maxsize=4096)
def _normalised(unit: str) -> str | None:
    """`normalise_unit` of a text (charts write a few units many times)."""
    text = "".join(unit.split()).lower()
    for micro in _MICRO:
        text = text.replace(micro, "u")
    return text or None


def _plural_forms(*words: str) -> set[str]:
    """word, words and word(s): the spellings EHRs use for the same unit."""
    return {form for word in words for form in (word, word + "s", word + "(s)")}


_MASS_TO_MG: dict[str, float] = {
    **dict.fromkeys({"mg"} | _plural_forms("milligram", "milligramme"), 1.0),
    **dict.fromkeys({"g", "gm"} | _plural_forms("gram", "gramme"), 1000.0),
    **dict.fromkeys({"mcg", "ug"} | _plural_forms("microgram", "microgramme"), 0.001),
}

_UNIT_DOSE = (
    _plural_forms("capsule", "tablet", "cap", "tab", "tbl", "each")
    | {"1", "{capsule}", "{capsules}", "{tablet}", "{tablets}", "{tbl}", "{cap}", "{tab}", "{each}"}
)

_WEIGHT_TO_KG: dict[str, float] = {
    **dict.fromkeys({"kg", "kgs"} | _plural_forms("kilogram", "kilogramme"), 1.0),
    **dict.fromkeys({"g"} | _plural_forms("gram", "gramme"), 0.001),
    **dict.fromkeys({"[lb_av]", "lb", "lbs"} | _plural_forms("pound"), LB_IN_KG),
}

_CREATININE_TO_MG_DL: dict[str, float] = {
    "mg/dl": 1.0,
    "mg/100ml": 1.0,
    "mg/l": 0.1,
    "umol/l": 1 / CREATININE_UMOL_PER_MG_DL,
    "micromol/l": 1 / CREATININE_UMOL_PER_MG_DL,
    "mmol/l": 1000 / CREATININE_UMOL_PER_MG_DL,
}

_SECONDS: dict[str, int] = {
    **dict.fromkeys({"s", "sec", "secs"} | _plural_forms("second"), 1),
    **dict.fromkeys({"min", "mins"} | _plural_forms("minute"), 60),
    **dict.fromkeys({"h", "hr", "hrs"} | _plural_forms("hour"), 3600),
    **dict.fromkeys({"d"} | _plural_forms("day"), 86400),
    **dict.fromkeys({"wk", "wks"} | _plural_forms("week"), 7 * 86400),
    **dict.fromkeys({"mo", "mos"} | _plural_forms("month"), 30 * 86400),  # a month counts 30 days
    **dict.fromkeys({"a", "yr", "yrs"} | _plural_forms("year"), 365 * 86400),  # a year 365 days
}

_MMHG: dict[str, float] = {"mm[hg]": 1.0, "mmhg": 1.0, "kpa": 7.50061683}

_BRACES = re.compile(r"^\{(.*)\}$")


def _convert(value: Any, unit: Any, table: dict[str, float]) -> float | None:
    number = as_number(value)
    key = normalise_unit(unit)
    if number is None or key is None or number < 0:
        return None
    factor = table.get(key)
    return None if factor is None else as_written(number * factor)


def mass_mg(value: Any, unit_or_code: Any) -> float | None:
    """A mass in milligrams from mg, g, mcg/ug/µg or their spelled-out forms (UCUM or text)."""
    return _convert(value, unit_or_code, _MASS_TO_MG)


def is_unit_dose(unit_or_code: Any) -> bool:
    """True for capsule/tablet-like units: "{capsule}", "tablet(s)", "tab", UCUM "1", "{each}"."""
    key = normalise_unit(unit_or_code)
    if key is None:
        return False
    if key in _UNIT_DOSE:
        return True
    braced = _BRACES.match(key)
    return bool(braced) and braced.group(1) in _UNIT_DOSE


def weight_kg(value: Any, unit: Any) -> float | None:
    """A body weight in kilograms from kg, g, [lb_av], lb, lbs or pound(s)."""
    return _convert(value, unit, _WEIGHT_TO_KG)


def creatinine_mg_dl(value: Any, unit: Any) -> float | None:
    """Serum creatinine in mg/dL from mg/dL, mg/L, umol/L (/88.4) or mmol/L (x1000/88.4)."""
    return _convert(value, unit, _CREATININE_TO_MG_DL)


def pressure_mmhg(value: Any, unit: Any) -> float | None:
    """A blood pressure in mmHg from mm[Hg], mmHg or kPa."""
    return _convert(value, unit, _MMHG)


def period_seconds(unit: Any) -> int | None:
    """Seconds in one UCUM time unit (s, min, h, d, wk, mo = 30 d, a = 365 d) or its spelling."""
    key = normalise_unit(unit)
    return _SECONDS.get(key) if key else None


def days_in_period(value: Any, unit: Any) -> float | None:
    """Length of a timing period in days; None for unknown units and non-positive lengths."""
    number = as_number(value)
    seconds = period_seconds(unit)
    if number is None or seconds is None or number <= 0:
        return None
    return number * seconds / 86400
