"""Small file I/O shared by every stage: reading a JSON object with one clear error naming the file, the one
atomic writer (:func:`atomic_path`, with text and JSON on top), and the one sha256 digest of a file or a folder (``.mlpackage``) with its size."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


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


@contextlib.contextmanager
def atomic_path(path: str | Path, *, suffix: str = ".tmp", mode: int | None = None, error: type[Exception] = OSError,
                what: str = "file") -> Iterator[Path]:
    """The one atomic writer: a temporary file beside ``path`` for the block to write (by name: ``torch.save``,
    ``np.save``, text), renamed onto ``path`` when the block ends, removed when it raises anything (full disk,
    Ctrl-C), so nothing is left half-written. ``suffix`` keeps writers that add an extension (``.npy``, ``.npz``)
    from renaming it; ``mode`` (e.g. ``0o644``) is applied before the rename (the temporary file is ``0600``).
    An ``OSError`` (unwritable place, full disk) becomes ``error`` naming ``path`` and the ``what``."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=suffix, dir=p.parent)
        os.close(fd)
    except OSError as exc:
        raise error(f"{p}: cannot write the {what} ({exc.strerror or exc})") from exc
    try:
        yield Path(tmp)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, p)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise error(f"{p}: cannot write the {what} ({exc.strerror or exc})") from exc
        raise


def write_text_atomic(path: str | Path, text: str, error: type[Exception] = OSError, what: str = "file", *,
                      mode: int | None = None) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_path`; ``mode`` as there).

    Text that is not valid UTF-8, a target that is a folder or an unwritable place raise ``error`` naming it,
    before anything is left in the folder."""
    p = Path(path)
    if p.is_dir():
        raise error(f"{p}: is a folder; the {what} needs a file name (e.g. {p / 'out.json'})")
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise error(f"{p}: the {what} holds text that is not valid UTF-8 ({exc.reason} at "
                    f"{text[max(0, exc.start - 30):exc.end + 10]!r})") from exc
    with atomic_path(p, mode=mode, error=error, what=what) as tmp:
        tmp.write_bytes(data)
    return p


def write_json_atomic(path: str | Path, data: Any, error: type[Exception] = OSError, what: str = "JSON file",
                      **dump_kwargs: Any) -> Path:
    """``json.dumps(data, **dump_kwargs)`` (default ``indent=1``) written by :func:`write_text_atomic`;
    data that cannot be serialised raises ``error`` before any file is created."""
    kwargs = {"indent": 1, **dump_kwargs}
    try:
        text = json.dumps(data, **kwargs) + "\n"
    except (TypeError, ValueError) as exc:
        raise error(f"{path}: cannot write the {what}: {exc}") from exc
    return write_text_atomic(path, text, error, what)


def _file_digest(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def sha256_file(path: str | Path) -> str:
    """sha256 of a file's bytes; for a folder (Core ML ``.mlpackage``) the sha256 of its sorted
    ``relative/path<TAB>sha256-of-file<LF>`` lines (the bundle format's definition), so it depends neither on
    file-system order nor on timestamps. A path that is neither raises :class:`FileNotFoundError`."""
    p = Path(path)
    if p.is_file():
        return _file_digest(p)
    if not p.is_dir():
        raise FileNotFoundError(f"{p}: no such file or folder")
    files = sorted(q for q in p.rglob("*") if q.is_file())
    lines = "".join(f"{q.relative_to(p).as_posix()}\t{_file_digest(q)}\n" for q in files)
    return hashlib.sha256(lines.encode()).hexdigest()


def size_bytes(path: str | Path) -> int:
    """Bytes of a file, or the sum over every file of a folder (what manifest.json records beside the sha256)."""
    p = Path(path)
    return p.stat().st_size if p.is_file() else sum(q.stat().st_size for q in p.rglob("*") if q.is_file())
