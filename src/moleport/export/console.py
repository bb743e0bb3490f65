"""The one quiet front end of :func:`moleport.export.bundle.export_bundle`, shared by ``moleport export`` and the
pipeline (``make export``): the converters' console output (TensorFlow's ``TensorSpec`` lines, coremltools' and
ExecuTorch's progress) goes into ``<out>/<name>.export.log``; the console shows one line per format."""
from __future__ import annotations

from pathlib import Path

from moleport.quiet import format_progress, library_output_to


def export_logged(ckpt: str | Path, out: str | Path, *, name: str | None, indent: str = "", **kwargs):
    """``export_bundle(ckpt, out, name=name, **kwargs)`` with library output in the log; its ExportResult.

    ``kwargs`` go to export_bundle unchanged (manifest, formats, force, calib_n, int8_program, ...)."""
    from moleport.export.bundle import export_bundle, parse_formats

    formats = parse_formats(kwargs.get("formats"))
    log_path = Path(out) / f"{name or 'export'}.export.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.unlink(missing_ok=True)
    with library_output_to(log_path, header=f"export {ckpt}") as term:
        done: list[str] = []

        def progress(fmt: str, outcomes) -> None:
            done.append(fmt)
            states = ", ".join(f"{o.precision} {o.status} ({o.seconds:.0f} s)" for o in outcomes)
            print(f"{indent}{format_progress(len(done), len(formats), fmt)}: {states}", file=term, flush=True)

        result = export_bundle(ckpt, out, name=name, progress=progress, **kwargs)
    print(f"{indent}converter output: {log_path}", flush=True)
    return result
