"""Turning untrusted input into commands, with messages that name the field.

Both faces end up here: REST formats Litestar's (msgspec) validation report
with :func:`field_message`; GraphQL converts its input objects with :func:`parse`.
Either way the client reads ``jobContext.title: field required``.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, TypeVar

import msgspec

from app.errors import INVALID_UUID, BadRequest

T = TypeVar("T")

_AT_PATH = re.compile(r"^(?P<msg>.*?) - at `\$(?P<path>[^`]*)`$")
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\Z")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>[^`]+)`$")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def field_message(message: str, path: str) -> str:
    """``"jobContext.title: field required"`` from a msgspec message and a dotted path."""
    path = path.strip(".")
    if m := _MISSING.match(message):
        return f"{_join(path, m['name'])}: field required"
    if m := _UNKNOWN.match(message):
        return f"{_join(path, m['name'])}: unknown field"
    text = message[:1].lower() + message[1:]
    return f"{path}: {text}" if path else text


def _dotted(msgspec_path: str) -> str:
    # msgspec paths look like `.jobContext.requirements[3]`; keep them readable.
    return msgspec_path.lstrip(".")


def validation_message(exc: msgspec.ValidationError, prefix: str = "") -> str:
    text = str(exc)
    m = _AT_PATH.match(text)
    msg, path = (m["msg"], _dotted(m["path"])) if m else (text, "")
    if prefix:
        path = _join(prefix, path) if path else prefix
    return field_message(msg, path)


def storable_text(value: str) -> bool:
    """Text both databases can store: no NUL, no lone surrogate (not UTF-8)."""
    if "\x00" in value:
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _Unstorable(Exception):
    pass


def _normalise(data: Any, path: str) -> Any:
    """Integral floats become ints (``5.0`` is an integer in JSON Schema, and a
    float field still takes an int); text that cannot be stored is refused
    (the walk that names where runs only then)."""
    try:
        return _quick(data)
    except _Unstorable:
        return _named(data, path)


def _quick(data: Any) -> Any:
    kind = type(data)
    if kind is str:
        if not storable_text(data):
            raise _Unstorable()
        return data
    if kind is dict:
        return {
            (_quick(k) if type(k) is str else k): _quick(v)
            for k, v in data.items()  # type: ignore[attr-defined]
        }
    if kind is list:
        return [_quick(v) for v in data]
    if kind is float:
        return int(data) if data.is_integer() else data
    if isinstance(data, str | float | dict | list):  # subclasses: the general walk
        try:
            return _named(data, "")
        except BadRequest:  # walked again from the top, to name the field
            raise _Unstorable() from None
    return data


def _named(data: Any, path: str) -> Any:
    if isinstance(data, str):
        if not storable_text(data):
            raise BadRequest(f"{path or 'body'}: text must be valid UTF-8 without NUL characters")
        return data
    if isinstance(data, float):
        return int(data) if data.is_integer() else data
    if isinstance(data, dict):
        out = {}
        for k, v in data.items():
            key = _named(k, path) if isinstance(k, str) else k
            out[key] = _named(v, _join(path, str(key)))
        return out
    if isinstance(data, list):
        return [_named(v, f"{path}[{i}]") for i, v in enumerate(data)]
    return data


def parse(kind: type[T], data: Any, prefix: str = "") -> T:
    """Validate plain data (dicts, lists, scalars) into ``kind`` or raise BadRequest.

    Strict: ``"5"`` is not an integer and ``"true"`` not a boolean.
    """
    try:
        return msgspec.convert(_normalise(data, prefix), kind)
    except msgspec.ValidationError as exc:
        raise BadRequest(validation_message(exc, prefix)) from None


def parse_uuid(value: str | uuid.UUID) -> uuid.UUID:
    """The contract's UUID check for ids in paths and bodies."""
    if isinstance(value, uuid.UUID):
        return value
    if not _UUID.match(value):
        raise BadRequest(INVALID_UUID)
    return uuid.UUID(value)
