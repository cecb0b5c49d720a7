"""Values whose syntax Kubernetes and the OCI distribution spec define, parsed in one place.

Shared infrastructure: the request validators (deployments_app.validators) and the per-user policy
(users_app.policy) both need them and sit in different layers, so neither may own them.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# The registry an image reference without a host is pulled from.
DOCKER_HUB = "docker.io"

_BINARY_SUFFIX = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL_SUFFIX = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
}


def parse_quantity(value: str) -> Decimal:
    """The numeric value of a Kubernetes quantity (`500m`, `2Gi`, `1e3`), for comparisons.
    Raises decimal.InvalidOperation or KeyError on most strings that are not one."""
    for suffix, factor in _BINARY_SUFFIX.items():
        if value.endswith(suffix):
            return Decimal(value[: -len(suffix)]) * factor
    if re.search(r"[eE][+-]?\d+$", value):
        try:
            return Decimal(value)
        except InvalidOperation:
            return Decimal(0)
    suffix = value[-1] if value and not value[-1].isdigit() and value[-1] != "." else ""
    number = value[: len(value) - len(suffix)] if suffix else value
    return Decimal(number) * _DECIMAL_SUFFIX[suffix]
