"""Reading a JSON object from a file with one clear error naming the file (shared by every stage)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_json_object(path: str | Path, error: type[Exception] = ValueError, what: str = "JSON file",
                     list_key: str | None = None) -> dict[str, Any]:
    """The JSON object in ``path``; ``error`` (naming the file and the problem) when it is missing, unreadable,
    not JSON, not an object, or — with ``list_key`` — lacks a list under that key."""
    p = Path(path)
    if not p.is_file():
        raise error(f"{p}: {what} not found")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{p}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise error(f"{p}: {what} must be a JSON object, got {type(data).__name__}")
    if list_key is not None and not isinstance(data.get(list_key), list):
        raise error(f"{p}: expected an object with a '{list_key}' list")
    return data
