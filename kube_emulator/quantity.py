"""Resource quantities (``500m``, ``2``, ``128Mi``, ``1G``, ``1e3``) as exact fractions,
and their short string forms for quota status and messages."""
from __future__ import annotations

import re
from fractions import Fraction
from typing import Any, Optional

_SUFFIX = {
    "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": Fraction(1),
    "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12),
    "P": Fraction(10**15), "E": Fraction(10**18),
    "Ki": Fraction(2**10), "Mi": Fraction(2**20), "Gi": Fraction(2**30), "Ti": Fraction(2**40),
    "Pi": Fraction(2**50), "Ei": Fraction(2**60),
}
_RE = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+)?(n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


def parse(value: Any) -> Optional[Fraction]:
    """The quantity's value, or None when it is not a valid quantity."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return Fraction(value).limit_denominator(10**9)
    if not isinstance(value, str):
        return None
    m = _RE.match(value.strip())
    if not m:
        return None
    try:
        number = Fraction(m.group(1))
    except (ValueError, ZeroDivisionError):
        return None
    if m.group(2):
        number *= Fraction(10) ** int(m.group(2)[1:])
    return number * _SUFFIX[m.group(3) or ""]


def format_cpu(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return f"{round(value * 1000)}m"


def format_memory(value: Fraction) -> str:
    n = int(value)
    for suffix in ("Gi", "Mi", "Ki"):
        unit = int(_SUFFIX[suffix])
        if n and n % unit == 0:
            return f"{n // unit}{suffix}"
    return str(n)


def format_for(resource_name: str, value: Fraction) -> str:
    """How a quota's ``used`` value is written for a resource name."""
    if "memory" in resource_name or "storage" in resource_name:
        return format_memory(value)
    if "cpu" in resource_name:
        return format_cpu(value)
    return str(int(value))
