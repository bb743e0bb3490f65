"""Keep converter chatter (TensorFlow, onnx2tf, coremltools, C++ logging) out of the terminal.

``library_output_to(log)`` points the process-level stdout/stderr file descriptors 1 and 2 *and*
Python's ``sys.stdout`` / ``sys.stderr`` at an append-mode log file for the duration of the block,
so output written by C/C++ code goes there too, and yields a :class:`Terminal` that still writes to
the real terminal (for progress lines)::

    from moleport.quiet import library_output_to

    with library_output_to(out_dir / "export.log") as term:
        print("goes to export.log")
        term.progress(1, 3, "tflite fp32")           # goes to the real stderr
        tqdm(..., file=term.stderr)                   # so does a progress bar

Everything (descriptors, ``sys`` streams, environment) is restored on exit, also on exceptions.
Note that ``TF_CPP_MIN_LOG_LEVEL`` and friends only take effect when TensorFlow is imported inside
the block (TensorFlow reads them once, at import).
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, TextIO

#: Environment set inside the block (None: unset it there); the previous values come back on exit.
QUIET_ENV: Mapping[str, str | None] = {
    "TF_CPP_MIN_LOG_LEVEL": "2",  # TensorFlow C++: errors only
    "GRPC_VERBOSITY": "ERROR",
    "GLOG_minloglevel": "2",
}


def format_progress(done: int, total: int, label: str = "", width: int = 20) -> str:
    """``[########------------]  2/5  40%  label``: a one-line progress bar."""
    total = max(int(total), 0)
    done = min(max(int(done), 0), total) if total else max(int(done), 0)
    frac = done / total if total else 1.0
    fill = int(round(frac * width))
    digits = len(str(total))
    text = f"[{'#' * fill}{'-' * (width - fill)}] {done:>{digits}}/{total} {frac * 100:3.0f}%"
    return f"{text}  {label}" if label else text


@dataclass
class Terminal:
    """Handles on the real stdout/stderr, valid inside the ``library_output_to`` block."""

    stdout: TextIO
    stderr: TextIO
    log_path: Path

    def write(self, text: str) -> int:  # file-like: print(..., file=term) goes to the real stdout
        n = self.stdout.write(text)
        self.stdout.flush()
        return n

    def flush(self) -> None:
        self.stdout.flush()

    def isatty(self) -> bool:
        return self.stdout.isatty()

    def progress(self, done: int, total: int, label: str = "") -> None:
        """One progress line on the real stderr (redrawn in place on a terminal)."""
        line = format_progress(done, total, label)
        if self.stderr.isatty():
            end = "\n" if total and done >= total else ""
            self.stderr.write(f"\r\x1b[2K{line}{end}")
        else:
            self.stderr.write(line + "\n")
        self.stderr.flush()


@contextlib.contextmanager
def logger_level(name: str, level: int = logging.ERROR) -> Iterator[logging.Logger]:
    """Raise the Python logger ``name`` to ``level`` for the block (e.g. an import that logs a deprecation
    warning on the console); its level comes back on exit."""
    logger = logging.getLogger(name)
    before = logger.level
    logger.setLevel(level)
    try:
        yield logger
    finally:
        logger.setLevel(before)


def _flush_c_stdio() -> None:
    """Flush C ``stdio`` buffers so bytes printed before the switch land where they were meant to."""
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except Exception:  # noqa: BLE001  (best effort: no libc symbol table on some platforms)
        pass


def _flush(*streams) -> None:
    for s in streams:
        try:
            if s is not None:
                s.flush()
        except (OSError, ValueError):
            pass


def _dup(fd: int) -> int | None:
    try:
        return os.dup(fd)
    except OSError:  # descriptor closed (daemonised process): nothing to restore
        return None


def _set_env(env: Mapping[str, str | None]) -> dict[str, str | None]:
    saved = {}
    for key, value in env.items():
        saved[key] = os.environ.get(key)
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    return saved


def _restore_env(saved: Mapping[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _text(fd: int) -> TextIO:
    return io.TextIOWrapper(io.FileIO(fd, "w", closefd=True), encoding="utf-8", errors="backslashreplace",
                            line_buffering=True, write_through=True)


@contextlib.contextmanager
def library_output_to(log_path: str | Path, *, env: Mapping[str, str | None] | None = None,
                      header: str | None = None) -> Iterator[Terminal]:
    """Send fd 1/2 and ``sys.stdout``/``sys.stderr`` to ``log_path`` (appended) inside the block.

    ``env`` replaces :data:`QUIET_ENV` (a value of None unsets the variable inside the block);
    ``header`` is written to the log first (with a timestamp). Yields a :class:`Terminal`.
    """
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    old_sys = (sys.stdout, sys.stderr)
    _flush(*old_sys)
    _flush_c_stdio()
    saved_fds = (_dup(1), _dup(2))
    terminal = None
    log_text = None
    saved_env: dict[str, str | None] = {}
    try:
        terminal = Terminal(stdout=_text(os.dup(saved_fds[0] if saved_fds[0] is not None else log_fd)),
                            stderr=_text(os.dup(saved_fds[1] if saved_fds[1] is not None else log_fd)),
                            log_path=log_path)
        log_text = _text(os.dup(log_fd))
        if header:
            log_text.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} {header} =====\n")
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        sys.stdout = sys.stderr = log_text
        saved_env = _set_env(QUIET_ENV if env is None else env)
        yield terminal
    finally:
        _restore_env(saved_env)
        _flush(sys.stdout, sys.stderr, log_text)
        _flush_c_stdio()
        sys.stdout, sys.stderr = old_sys
        for fd, saved in ((1, saved_fds[0]), (2, saved_fds[1])):
            if saved is not None:
                os.dup2(saved, fd)
                os.close(saved)
            else:
                with contextlib.suppress(OSError):
                    os.close(fd)
        for handle in (log_text, *((terminal.stdout, terminal.stderr) if terminal else ())):
            with contextlib.suppress(OSError, ValueError):
                if handle is not None:
                    handle.close()
        os.close(log_fd)
