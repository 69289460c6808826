"""Result files as typed records: one frozen dataclass per file, shared by its writer and readers.

Why dataclasses and not pydantic: the records are plain data with a handful of field types
(numbers, strings, lists, string-keyed maps, nested records, Optional), the standard library
covers them, and the torch-free packages stay free of a heavy dependency. :func:`from_json`
is the one converter: it walks a record's type hints, checks every value, and names the
field path (``sublayers.cross.layers[0].sparsity``) when one is wrong.

:func:`read_record` turns a JSON file into its dataclass and refuses a file whose fields differ
(missing, unknown, wrong type) with an error naming the file, so a changed schema fails where it
is read, not later in a report. :func:`write_record` is its inverse (atomic, field order kept).
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, ClassVar, Type, TypeVar, Union

from .files import InputFileError, PathLike, write_json

__all__ = ["RecordError", "RecordFile", "from_json", "to_json", "read_record", "write_record"]

Record = TypeVar("Record")


class RecordError(ValueError):
    """A JSON value that does not fit its record type; ``where`` is the field path."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
        self.message = message


def _describe(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _convert(kind: Any, value: Any, where: str) -> Any:
    """``value`` (parsed JSON) as ``kind``; RecordError naming ``where`` when it does not fit."""
    origin = typing.get_origin(kind)
    if kind is Any:
        return value
    if origin is Union or origin is types.UnionType:
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        problems = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, where)
            except RecordError as error:
                if error.where != where or not error.message.startswith("must be "):
                    raise  # the value has this option's shape but a field of it is wrong: that is the error
                problems.append(error.message.split(", got ")[0].removeprefix("must be "))
        if type(None) in options:
            problems.append("null")
        raise RecordError(where, f"must be {' or '.join(dict.fromkeys(problems))}, got {_describe(value)}")
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise RecordError(where, f"must be an object, got {_describe(value)}")
        return from_json(kind, value, where)
    if origin in (list, tuple) or kind in (list, tuple):
        if not isinstance(value, list):
            raise RecordError(where, f"must be a list, got {_describe(value)}")
        args = typing.get_args(kind)
        if (origin is tuple or kind is tuple) and args and args[-1] is not Ellipsis:  # Tuple[X, Y]: fixed length
            if len(value) != len(args):
                raise RecordError(where, f"must be a list of {len(args)} items, got {len(value)}")
            return tuple(_convert(item, element, f"{where}[{index}]")
                         for index, (item, element) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        items = [_convert(item, element, f"{where}[{index}]") for index, element in enumerate(value)]
        return tuple(items) if origin is tuple or kind is tuple else items
    if origin is dict or kind is dict:
        if not isinstance(value, dict):
            raise RecordError(where, f"must be an object, got {_describe(value)}")
        args = typing.get_args(kind)
        item = args[1] if args else Any
        return {key: _convert(item, element, _join(where, key)) for key, element in value.items()}
    if kind is bool:
        if not isinstance(value, bool):
            raise RecordError(where, f"must be true or false, got {_describe(value)}")
        return value
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise RecordError(where, f"must be an integer, got {_describe(value)}")
        return value
    if kind is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise RecordError(where, f"must be a finite number, got {_describe(value)}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise RecordError(where, f"must be a string, got {_describe(value)}")
        return value
    if isinstance(kind, type) and kind is type(None):
        if value is not None:
            raise RecordError(where, f"must be null, got {_describe(value)}")
        return None
    if typing.get_origin(kind) is typing.Literal:
        if value not in typing.get_args(kind):
            choices = ", ".join(json.dumps(choice) for choice in typing.get_args(kind))
            raise RecordError(where, f"must be one of {choices}, got {_describe(value)}")
        return value
    raise TypeError(f"records cannot hold fields of type {kind!r} ({where})")


def from_json(cls: Type[Record], data: dict, where: str = "") -> Record:
    """The dataclass ``cls`` from a parsed JSON object, every field checked against its type hint.

    Fields with defaults may be absent; unknown fields are refused. Nested dataclasses, lists,
    string-keyed dicts, Optional/Union, Literal and the JSON scalars are supported.
    """
    if not isinstance(data, dict):
        raise RecordError(where, f"must be an object, got {_describe(data)}")
    hints = typing.get_type_hints(cls)
    known = {field.name: field for field in fields(cls)}
    unknown = sorted(set(data) - set(known))
    missing = sorted(key for key, field in known.items()
                     if field.default is MISSING and field.default_factory is MISSING and key not in data)
    if unknown or missing:
        parts = ([f"unknown field(s) {', '.join(unknown)}"] if unknown else []) + \
                ([f"missing field(s) {', '.join(missing)}"] if missing else [])
        raise RecordError(where, "; ".join(parts))
    values = {name: _convert(hints[name], value, _join(where, name)) for name, value in data.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:  # __post_init__ checks
        raise RecordError(where, str(error)) from None


def to_json(record: Any) -> Any:
    """A record (or list/dict of records) as plain JSON values, in field order."""
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return {field.name: to_json(getattr(record, field.name)) for field in fields(record)}
    if isinstance(record, (list, tuple)):
        return [to_json(item) for item in record]
    if isinstance(record, dict):
        return {key: to_json(value) for key, value in record.items()}
    return record


def read_record(cls: Type[Record], path: PathLike) -> Record:
    """The dataclass ``cls`` from the JSON object in ``path``; InputFileError naming the file (and the
    JSON line) when it cannot be read, or naming the field when a value is not ``cls``'s schema."""
    name = Path(path).name
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputFileError(path, None, f"not a readable {name} ({error})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputFileError(path, error.lineno,
                             f"malformed JSON: {error.msg} (column {error.colno}); not a readable {name}") from None
    if not isinstance(data, dict):
        raise InputFileError(path, None, f"{name} must hold a JSON object")
    try:
        return from_json(cls, data)
    except RecordError as error:
        raise InputFileError(path, None, f"not the {name} schema of {cls.__name__}: {error}") from None


def write_record(path: PathLike, record: Any, indent: int = 1) -> None:
    """Write ``record`` as JSON atomically (the inverse of :func:`read_record`)."""
    write_json(path, to_json(record), indent=indent)


class RecordFile:
    """Base of a record that is a whole file: ``Record.read(path)`` and ``record.write(path)``.

    Subclasses set ``indent`` (the committed layout) and override :meth:`input_error` to raise
    their package's own error type for a file that is not their schema.
    """

    indent: ClassVar[int] = 1

    @classmethod
    def input_error(cls, error: InputFileError) -> Exception:
        """The exception :meth:`read` raises for ``error`` (by default, ``error`` itself)."""
        return error

    @classmethod
    def read(cls: Type[Record], path: PathLike) -> Record:
        """The record in ``path``; :meth:`input_error` naming the file (and field) when it is not this schema."""
        try:
            return read_record(cls, path)
        except InputFileError as error:
            raise cls.input_error(error) from None

    def write(self, path: PathLike) -> None:
        """Write the file atomically (:func:`write_record`, this class's ``indent``)."""
        write_record(path, self, indent=self.indent)
