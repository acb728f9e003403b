"""JSON from outside (request bodies, archives), read within limits: a clear 4xx for each way
it can be wrong, decided before anything is stored or streamed.

    400 not UTF-8, not JSON, nested deeper than MAX_DEPTH, an integer longer than MAX_INT_DIGITS
    422 a text with a lone surrogate or a NUL (naming the field)

Depth and integer size are enforced while reading, not by catching the parser's RecursionError
or Python's int-string limit afterwards: a scan of the structure runs before the (recursive)
parser, and integers are built by a hook that refuses long ones.
"""
from __future__ import annotations

import json
import re
from typing import Any

from core.errors import BadRequest, InvalidInput

MAX_DEPTH = 64  # the deepest real body (an OpenAI message with content parts) is under 8
MAX_INT_DIGITS = 32  # any count, id or seed fits; 5,000 digits would hit Python's own limit

_STRUCTURE = re.compile(r'[\[\]{}"\\]')
_BAD_TEXT = re.compile(r"[\ud800-\udfff\x00]")


def parse_json(raw: bytes, what: str = "JSON") -> Any:
    """Bytes to a JSON value within the limits, every text in it checked."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"malformed {what}: not UTF-8 ({exc.reason} at byte {exc.start})",
                         code="malformed_json") from exc
    check_depth(text, what)
    try:
        data = json.loads(text, parse_int=_bounded_int, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"malformed {what}: {exc}", code="malformed_json") from exc
    except _Refused as exc:
        raise BadRequest(f"{what}: {exc}", code=exc.code) from None
    check_texts(data)
    return data


def check_depth(text: str, what: str = "JSON") -> None:
    """400 when arrays and objects nest deeper than MAX_DEPTH (strings skipped, escapes too)."""
    depth, in_string, escaped_at = 0, False, -1
    for match in _STRUCTURE.finditer(text):
        at = match.start()
        if at == escaped_at:
            continue
        char = text[at]
        if in_string:
            if char == "\\":
                escaped_at = at + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise BadRequest(f"{what} nests deeper than {MAX_DEPTH} levels", code="json_too_deep")
        elif char in "]}":
            depth -= 1


def check_texts(data: Any) -> None:
    """422 naming the field when a text (or a key) holds a lone surrogate (not a character: it
    cannot be stored or encoded) or a NUL. Iterative: the depth is already bounded, but a
    wide body must not cost a recursion per item."""
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            _check_text(value, where)
        elif isinstance(value, dict):
            for key, item in value.items():
                _check_text(key, f"{where}.{key[:40]}" if where else key[:40])
                stack.append((f"{where}.{key}" if where else key, item))
        elif isinstance(value, list):
            stack.extend((f"{where}[{index}]", item) for index, item in enumerate(value))


def _check_text(text: str, where: str) -> None:
    bad = _BAD_TEXT.search(text)
    if bad is None:
        return
    what = "a NUL character" if bad.group() == "\x00" else f"a lone surrogate (U+{ord(bad.group()):04X})"
    raise InvalidInput(f"{where or 'body'}: the text holds {what}; send valid Unicode text", code="invalid_text")


class _Refused(ValueError):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise _Refused(f"an integer of {len(digits.lstrip('-'))} digits (at most {MAX_INT_DIGITS})", "number_too_large")
    return int(digits)


def _no_constant(name: str) -> float:
    raise _Refused(f"{name} is not JSON (numbers must be finite)", "malformed_json")
