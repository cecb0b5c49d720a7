"""Log formatters: one record is one line, whatever a client put into it.

Messages often carry what a client sent (a path, an identifier, a header). A `%0A` in a path must
not start a fake record in a text log, and an ANSI escape must not repaint an operator's terminal:
TextFormatter escapes every control character of the message (`\\n` -> `\\x0a`), and indents each
line of a traceback, so that only a real record starts a line with a timestamp. JsonFormatter is
one JSON object per line (json.dumps escapes control characters itself).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timezone

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

# C0 and C1 control characters, DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
TRACEBACK_INDENT = "    "


def _escape_one(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_control(text: str) -> str:
    """`text` with every control character written as a visible escape (one line, always)."""
    return _CONTROL.sub(_escape_one, text)


def indent_block(text: str) -> str:
    """A multi-line block (a traceback) with each line escaped and indented under its record."""
    return "\n".join(TRACEBACK_INDENT + escape_control(line) for line in text.splitlines())


class TextFormatter(logging.Formatter):
    """logging.Formatter whose records cannot span or forge lines (see the module docstring)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_control(record.message)
        return super().formatMessage(record)

    def formatException(self, ei) -> str:
        return indent_block(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return indent_block(stack_info)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)
