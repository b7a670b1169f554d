"""JSON parsing with a nesting limit: a body nested thousands of levels deep answers 400, never a
RecursionError (500) in the parser or in any code that walks the parsed value afterwards."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.settings import api_settings


class JSONTooDeep(ValueError):
    """The document nests arrays and objects deeper than the limit."""


def json_depth_check(value: Any, *, max_depth: int) -> None:
    """Raise JSONTooDeep if `value` nests lists/dicts deeper than `max_depth` (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            raise JSONTooDeep(f"JSON nests deeper than {max_depth} levels.")
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


# a JSON string (skipped whole, escapes included) or one bracket; possessive: no backtracking
_JSON_TOKENS = re.compile(rb'"(?:[^"\\]++|\\.)*+"|[\[\]{}]')
_OPENING = frozenset(b"[{")


def json_depth_scan(raw: bytes, *, max_depth: int | None = None) -> None:
    """Raise JSONTooDeep if the JSON text `raw` nests arrays/objects deeper than the limit, without
    parsing it: a regex skips strings and counts brackets, so no Python object is built for the
    document (about 15 M tokens per 6 s on the dev box; a file with fewer brackets than the limit is not
    scanned at all). Malformed JSON is not refused here: the real parse does that."""
    limit = settings.LABELHUB_MAX_JSON_DEPTH if max_depth is None else max_depth
    if raw.count(b"[") + raw.count(b"{") <= limit:  # too few brackets to nest deeper: nothing to scan
        return
    depth = 0
    for match in _JSON_TOKENS.finditer(raw):
        char = raw[match.start()]
        if char == 0x22:  # a string
            continue
        if char in _OPENING:
            depth += 1
            if depth > limit:
                raise JSONTooDeep(f"JSON nests deeper than {limit} levels.")
        else:
            depth = max(depth - 1, 0)


def json_loads_bounded(raw: bytes | str, *, max_depth: int | None = None, **kwargs: Any) -> Any:
    """json.loads with a nesting limit (LABELHUB_MAX_JSON_DEPTH): JSONTooDeep (a ValueError) when the
    document nests deeper, including documents deep enough to exhaust the parser's own recursion."""
    limit = settings.LABELHUB_MAX_JSON_DEPTH if max_depth is None else max_depth
    try:
        value = json.loads(raw, **kwargs)
    except RecursionError as exc:
        raise JSONTooDeep(f"JSON nests deeper than {limit} levels.") from exc
    json_depth_check(value, max_depth=limit)
    return value


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with the nesting limit of `json_loads_bounded`."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.getreader(encoding)(stream).read()
            kwargs = {} if not api_settings.STRICT_JSON else {"parse_constant": _refuse_constant}
            return json_loads_bounded(text, **kwargs)
        except JSONTooDeep as exc:
            raise ParseError(str(exc), code="too_deep") from exc
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc


def _refuse_constant(value: str) -> None:
    raise ValueError(f"Out of range float values are not JSON compliant: {value!r}")
