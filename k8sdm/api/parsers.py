"""The API's one body parser: JSON in UTF-8, bounded nesting, every key once.

DRF's JSONParser hands the body to json.loads, which lets through what the API must refuse:
- nesting deep enough to raise RecursionError (a 500), or merely deeper than any config can be;
- a duplicate key (`{"replicas": 1, "replicas": 9}`), silently keeping the last one, so the body a
  proxy or an audit log checked is not the body applied;
- a `charset` parameter naming any codec Python knows (`utf-16`), or one it does not (LookupError,
  a 500): JSON on the wire is UTF-8 (RFC 8259), anything else is a 415.
Each is refused here as 400 `malformed` (or 415), in the one error shape, before a view runs.
"""

from __future__ import annotations

import json

from django.utils.http import parse_header_parameters
from rest_framework import exceptions, parsers, renderers

# The deepest valid config is 3 levels (resources.limits.cpu); this leaves room for error
# reports to say what is wrong without letting a client build a structure the API walks forever.
MAX_DEPTH = 32
UTF8 = frozenset({"utf-8", "utf8"})


class MalformedBody(exceptions.ParseError):
    default_code = "malformed"

    def __init__(self, reason: str):
        super().__init__(detail=f"The body is not acceptable JSON: {reason}.")
        self.reason = reason


class _DuplicateKey(ValueError):
    pass


def _object_without_duplicates(pairs: list[tuple[str, object]]) -> dict:
    obj: dict = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _depth(data) -> int:
    """Nesting depth of a parsed document, without recursion (the input decides how deep it is)."""
    deepest = 0
    stack = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def check_charset(media_type: str | None) -> None:
    _, params = parse_header_parameters(media_type or "")
    charset = params.get("charset")
    if charset is not None and charset.strip().lower() not in UTF8:
        raise exceptions.UnsupportedMediaType(
            media_type, detail=f"The body must be UTF-8; charset={charset!r} is not accepted."
        )


def parse_json(raw: bytes):
    """bytes -> the parsed document, or MalformedBody naming what is wrong."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"it is not UTF-8 (byte {exc.start})") from None
    try:
        data = json.loads(text, object_pairs_hook=_object_without_duplicates, parse_constant=_refuse_constant)
    except RecursionError:
        raise MalformedBody(f"it is nested more than {MAX_DEPTH} levels deep") from None
    except _DuplicateKey as exc:
        raise MalformedBody(f"the key {exc.args[0]!r} appears more than once in one object") from None
    except json.JSONDecodeError as exc:
        raise MalformedBody(str(exc)) from None
    except ValueError as exc:  # NaN/Infinity, or an integer over Python's 4300-digit conversion limit
        reason = "a number has too many digits" if "digits" in str(exc) else str(exc)
        raise MalformedBody(reason) from None
    if _depth(data) > MAX_DEPTH:
        raise MalformedBody(f"it is nested more than {MAX_DEPTH} levels deep")
    return data


class StrictJSONParser(parsers.BaseParser):
    """REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]: application/json, as described above."""

    media_type = "application/json"
    renderer_class = renderers.JSONRenderer

    def parse(self, stream, media_type=None, parser_context=None):
        check_charset(media_type)
        return parse_json(stream.read())
