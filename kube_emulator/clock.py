"""Timestamps as the apiserver writes them, and kubectl's human durations."""
from __future__ import annotations

import calendar
import time
from typing import Optional


def now_rfc3339(at: Optional[float] = None) -> str:
    """RFC 3339 in UTC, second precision, like metav1.Time (``at``: a time.time())."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def parse_rfc3339(ts: Optional[str]) -> Optional[float]:
    if not ts:
        return None
    try:
        return float(calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ")))
    except (ValueError, TypeError):
        return None


def age(ts: Optional[str]) -> str:
    """kubectl's ``duration.HumanDuration`` since an RFC 3339 time."""
    t = parse_rfc3339(ts)
    if t is None:
        return "<unknown>"
    s = max(0, int(time.time() - t))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 48:
        return f"{h}h"
    return f"{h // 24}d"
