"""How records read in the console: durations, JSON, conditions, drift and degraded reasons.

Every function returns escaped HTML (format_html / format_html_join) or plain text; nothing a
user sent is ever marked safe as it is.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

EMPTY = "-"


def seconds_text(seconds: float | None) -> str:
    """1.234 -> '1.234 s', 75 -> '1 min 15 s', 7300 -> '2 h 1 min'."""
    if seconds is None:
        return EMPTY
    if seconds < 0:
        seconds = 0.0
    if seconds < 10:
        return f"{seconds:.3f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    total = int(seconds)
    if total < 3600:
        return f"{total // 60} min" + (f" {total % 60} s" if total % 60 else "")
    if total < 86400:
        return f"{total // 3600} h {total % 3600 // 60} min"
    return f"{total // 86400} d {total % 86400 // 3600} h"


def between(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return EMPTY
    return seconds_text((end - start).total_seconds())


def timestamp(value: datetime | None) -> str:
    """UTC with seconds and milliseconds, the precision the logs have."""
    if value is None:
        return EMPTY
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


_TOKEN = re.compile(r'("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)')


def json_html(value) -> SafeString:
    """Indented JSON with keys, strings, numbers and literals in their own colours."""
    if value in (None, {}, []):
        return format_html('<span class="ops-quiet">{}</span>', "(empty)" if value is not None else EMPTY)
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
    out, last = [], 0
    for match in _TOKEN.finditer(text):
        out.append(escape(text[last:match.start()]))
        string, colon, literal, number = match.groups()
        if string is not None:
            css = "ops-json-key" if colon else "ops-json-str"
            out.append(f'<span class="{css}">{escape(string)}</span>{escape(colon or "")}')
        elif literal is not None:
            out.append(f'<span class="ops-json-lit">{literal}</span>')
        else:
            out.append(f'<span class="ops-json-num">{escape(number)}</span>')
        last = match.end()
    out.append(escape(text[last:]))
    # Every piece above is escaped; the spans are ours.
    return mark_safe(f'<pre class="ops-json">{"".join(out)}</pre>')  # noqa: S308


def conditions_table(conditions: list | None) -> SafeString:
    if not conditions:
        return format_html('<span class="ops-quiet">{}</span>', "none reported")
    rows = format_html_join(
        "",
        '<tr class="{}"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
        (
            (
                "ops-bad" if _is_bad_condition(c) else "",
                c.get("type", ""), c.get("status", ""), c.get("reason", ""), c.get("message", ""),
                c.get("lastUpdateTime") or c.get("lastTransitionTime") or "",
            )
            for c in conditions if isinstance(c, dict)
        ),
    )
    return format_html(
        '<table class="ops-table ops-conditions"><thead><tr><th>Type</th><th>Status</th><th>Reason</th>'
        "<th>Message</th><th>Last update</th></tr></thead><tbody>{}</tbody></table>",
        rows,
    )


def _is_bad_condition(cond: dict) -> bool:
    if cond.get("type") == "ReplicaFailure":
        return cond.get("status") == "True"
    return cond.get("status") == "False"


def degraded_reason(conditions: list | None) -> str:
    """Why a Deployment is DEGRADED, from its own conditions ('' when none says so)."""
    for cond in conditions or []:
        if not isinstance(cond, dict):
            continue
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return f"ProgressDeadlineExceeded: {cond.get('message', '')}".rstrip(": ")
        if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
            return f"ReplicaFailure: {cond.get('reason', '')} {cond.get('message', '')}".strip()
    return ""


def _short(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= 40 else text[:37] + "..."


def drift_text(drift: dict | None) -> str:
    """{'replicas': {'desired': 2, 'live': 5}} -> 'drift: replicas 5 != 2' ('' when in sync)."""
    if not drift:
        return ""
    parts = []
    for name in sorted(drift):
        diff = drift[name] if isinstance(drift[name], dict) else {}
        parts.append(f"{name} {_short(diff.get('live'))} != {_short(diff.get('desired'))}")
    return "drift: " + "; ".join(parts)


def drift_html(drift: dict | None) -> SafeString | str:
    text = drift_text(drift)
    return format_html('<span class="ops-warn">{}</span>', text) if text else ""


def status_badge(value: str) -> SafeString:
    """A status or health word in its colour (class ops-s-<value>)."""
    return format_html('<span class="ops-badge ops-s-{}">{}</span>', (value or "").lower(), value or EMPTY)


def field_table(rows: list[tuple[str, object]]) -> SafeString:
    return format_html(
        '<table class="ops-table ops-fields"><tbody>{}</tbody></table>',
        format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows),
    )
