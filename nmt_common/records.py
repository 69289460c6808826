"""Result files as typed records: one frozen dataclass per file, shared by its writer and readers.

:func:`read_record` turns a JSON file into its dataclass and refuses a file whose fields differ
(missing, unknown) with an error naming the file, so a changed schema fails where it is read, not
later in a report.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Type, TypeVar

from .files import InputFileError, PathLike

Record = TypeVar("Record")


def read_record(cls: Type[Record], path: PathLike) -> Record:
    """The dataclass ``cls`` from the JSON object in ``path``; InputFileError naming the file when it
    cannot be read or its fields are not exactly ``cls``'s (fields with defaults may be absent)."""
    name = Path(path).name
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputFileError(path, None, f"not a readable {name} ({error})") from None
    if not isinstance(data, dict):
        raise InputFileError(path, None, f"{name} must hold a JSON object")
    known = {field.name: field for field in fields(cls)}
    unknown = sorted(set(data) - set(known))
    missing = sorted(key for key, field in known.items()
                     if field.default is MISSING and field.default_factory is MISSING and key not in data)
    if unknown or missing:
        raise InputFileError(path, None, f"not the {name} schema (unknown fields {unknown}, missing {missing})")
    return cls(**data)
