"""Image sources: find every (image, label, lesion) of a dataset folder, without decoding.

Three layouts are recognised (``open_source`` picks one):

CSV dataset (a ``metadata.csv`` in the folder)
    Columns ``image_id``, ``label`` (``melanoma``/``nevus``; ``mel``/``nv`` accepted) and
    optionally ``lesion_id``. Images live in ``images/`` (or beside the CSV when there is no
    ``images/``); the file is ``image_id`` itself if it has an extension, otherwise
    ``image_id`` + the first of ``.jpg .jpeg .png`` (any case) that exists. The synthetic
    dataset (:mod:`moleport.data.synth`) and ``../shared/data/ham10000-mel-nv`` are CSV sources.

ImageFolder tree (no ``metadata.csv``)
    Class folders are found by name (``melanoma``, ``nevus``; case-insensitive) at any
    depth; an image's label is its nearest class-named ancestor folder, so
    ``root/Train/Melanoma/x.jpg`` and ``root/melanoma/a/b.png`` both count. Images outside
    any class folder (other classes such as ``seborrheic_keratosis``) are ignored.

``preset="paper"``: the paper's two Kaggle downloads under one root, in any arrangement
    The ISIC 2017 download ("skin-lesion-analysis-toward-melanoma-detection") keeps each
    split (train/valid/test) as a folder holding ``melanoma``, ``nevus`` and
    ``seborrheic_keratosis`` folders; seborrheic keratosis exists only in that dataset. So:

    - an *ISIC 2017 split folder* is any folder with a ``seborrheic_keratosis`` child
      (``_``/``-``/space interchangeable, any case);
    - **melanoma** = the ``melanoma`` folders that are children of ISIC 2017 split folders;
    - **nevus** = every ``nevus`` folder (``nevi``/``naevus`` accepted) that is *not* a
      child of an ISIC 2017 split folder, i.e. the "nevus classifier" download
      (mathewmarcum/nevusclassifier);
    - everything else is ignored: ISIC 2017 nevus and seborrheic keratosis images, and any
      melanoma folder outside the ISIC 2017 split folders.

    At least one ISIC 2017 split folder and one other nevus folder must exist.

Image files are recognised by extension (``.jpg .jpeg .png .bmp .tif .tiff .webp``, any
case); hidden files are skipped. An image format moleport does not decode (``.gif``, ``.heic``, ...) and
a file whose name is not valid UTF-8 are per-file problems (listed by reports, refused by ``split``
unless ``--skip-bad``); other files in a class folder are listed as ignored. Nothing is dropped silently. Nothing is decoded here: :mod:`moleport.data.split` decodes
and validates every image.
"""
from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
CSV_EXTS = (".jpg", ".jpeg", ".png")
#: Image formats found in the wild that moleport does not decode: a problem, not an ignored file.
UNSUPPORTED_IMAGE_EXTS = (".gif", ".heic", ".heif", ".avif", ".jxl", ".jp2", ".j2k", ".jfif", ".dng", ".cr2", ".nef",
                          ".arw", ".raw", ".svg", ".ico", ".psd", ".tga", ".ppm", ".pgm", ".pnm", ".dcm", ".exr", ".hdr")
LABEL_ALIASES = {"melanoma": "melanoma", "mel": "melanoma", "nevus": "nevus", "nv": "nevus",
                 "naevus": "nevus", "nevi": "nevus"}
CLASS_FOLDERS = {"melanoma": "melanoma", "nevus": "nevus", "nevi": "nevus", "naevus": "nevus"}
PRESETS = ("paper",)


class SourceError(ValueError):
    """A dataset folder cannot be read; the message names the path and the problem."""


@dataclass(frozen=True)
class Record:
    """One labelled image, not yet decoded."""

    path: Path
    label: str  # "melanoma" | "nevus"
    lesion_id: str | None = None
    source: str = ""


@dataclass(frozen=True)
class Problem:
    """A file or folder that cannot be used (reported, or raised when not skipping)."""

    path: str
    problem: str


@dataclass(frozen=True)
class SourceScan:
    """What a source folder holds: usable records and per-file problems."""

    records: tuple[Record, ...]
    problems: tuple[Problem, ...] = field(default=())
    layout: str = ""
    ignored: tuple[Problem, ...] = field(default=())  # non-image files in class folders, listed by reports


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", "_", name.strip().lower())


def _is_image(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTS)


def _walk(root: Path):
    """os.walk in sorted order (deterministic), not following links."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        yield Path(dirpath), dirnames, sorted(filenames)


def open_source(path: str | Path, preset: str | None = None) -> list[Record]:
    """Every labelled image of a dataset folder; raises :class:`SourceError` on any problem."""
    scan = scan_source(path, preset)
    if scan.problems:
        lines = "\n".join(f"  {p.path}: {p.problem}" for p in scan.problems)
        raise SourceError(f"{path}: {len(scan.problems)} problem(s) in the source:\n{lines}")
    return list(scan.records)


def scan_source(path: str | Path, preset: str | None = None) -> SourceScan:
    """Like :func:`open_source` but per-file problems are returned instead of raised.

    Problems that leave nothing to train on (missing folder, missing class, no images)
    are always raised.
    """
    root = Path(path).expanduser().resolve()  # records carry absolute paths (the manifest needs them)
    if not root.exists():
        raise SourceError(f"{root}: source folder not found")
    if not root.is_dir():
        raise SourceError(f"{root}: not a folder (expected a dataset folder)")
    if preset is not None and preset not in PRESETS:
        raise SourceError(f"{root}: unknown preset {preset!r}; known presets: {PRESETS}")
    if preset == "paper":
        scan = _scan_paper(root)
    elif (root / "metadata.csv").is_file():
        scan = _scan_csv(root)
    else:
        scan = _scan_imagefolder(root, root.name, _class_folders(root))
    _check_classes(root, scan)
    return scan


def _check_classes(root: Path, scan: SourceScan) -> None:
    """Both classes must have images; the message also lists the per-file problems seen."""
    seen = "".join(f"\n  {p.path}: {p.problem}" for p in scan.problems)
    if not scan.records:
        raise SourceError(f"{root}: no usable images found ({scan.layout} layout){seen}")
    for label in ("melanoma", "nevus"):
        if not any(r.label == label for r in scan.records):
            raise SourceError(f"{root}: no {label} images found ({scan.layout} layout){seen}")


# --- CSV ---------------------------------------------------------------------------
def _file_index(folder: Path) -> dict[str, str]:
    """Lower-case file name -> actual name, for one folder."""
    with os.scandir(folder) as it:
        return {e.name.lower(): e.name for e in it if e.is_file()}


def _csv_image(image_id: str, folder: Path, index: dict[str, str]) -> Path | None:
    if image_id.lower().endswith(IMAGE_EXTS):
        name = index.get(image_id.lower())
        return folder / name if name else None
    for ext in CSV_EXTS:
        name = index.get((image_id + ext).lower())
        if name:
            return folder / name
    return None


def _scan_csv(root: Path) -> SourceScan:
    csv_path = root / "metadata.csv"
    folder = root / "images" if (root / "images").is_dir() else root
    index = _file_index(folder)
    records, problems, seen = [], [], set()
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = {"image_id", "label"} - set(reader.fieldnames or ())
        if missing:
            raise SourceError(f"{csv_path}: missing column(s) {sorted(missing)}; found {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            image_id = (row["image_id"] or "").strip()
            where = f"{csv_path}:{line}"
            label = LABEL_ALIASES.get((row["label"] or "").strip().lower())
            if label is None:
                raise SourceError(f"{where}: unknown label {row['label']!r} for {image_id!r} "
                                  f"(expected melanoma or nevus)")
            if not image_id or image_id in seen:
                raise SourceError(f"{where}: {'empty' if not image_id else 'repeated'} image_id {image_id!r}")
            seen.add(image_id)
            img = _csv_image(image_id, folder, index)
            if img is None:
                problems.append(Problem(str(folder / image_id), f"image listed in {where} not found "
                                        f"(tried {', '.join(CSV_EXTS)})"))
                continue
            lesion = (row.get("lesion_id") or "").strip() or None
            records.append(Record(img, label, lesion, root.name))
    return SourceScan(tuple(records), tuple(problems), "csv")


# --- ImageFolder ---------------------------------------------------------------------
def _class_folders(root: Path) -> list[tuple[Path, str]]:
    """Outermost folders named after a class, with their label, in sorted order."""
    found = []
    for dirpath, dirnames, _ in _walk(root):
        keep = []
        for d in dirnames:
            label = CLASS_FOLDERS.get(_norm(d))
            if label:
                found.append((dirpath / d, label))
            else:
                keep.append(d)
        dirnames[:] = keep  # a class folder's sub-folders belong to it
    return found


def printable(path: str | Path) -> str:
    """``path`` as text that can always be printed and written to JSON: bytes of a file name that is not
    valid UTF-8 appear as ``\\xNN`` escapes."""
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


def valid_utf8(path: str | Path) -> bool:
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _images_under(folder: Path) -> tuple[list[Path], list[Problem], list[Problem]]:
    """(image files, problems, ignored files) under ``folder``: a file name that is not UTF-8 and an image
    format moleport cannot read are problems; other non-hidden files are listed as ignored; none is dropped
    silently."""
    images, problems, ignored = [], [], []
    for d, _, files in _walk(folder):
        for f in files:
            if f.startswith("."):
                continue
            p = d / f
            if not valid_utf8(p):
                problems.append(Problem(printable(p), "file name is not valid UTF-8; rename the file "
                                                      "(the manifest, reports and apps need UTF-8 paths)"))
            elif _is_image(f):
                images.append(p)
            else:
                ext = Path(f).suffix.lower()
                if ext in UNSUPPORTED_IMAGE_EXTS:
                    problems.append(Problem(str(p), f"unsupported image format {ext}: moleport reads "
                                                    f"{' '.join(IMAGE_EXTS)}; convert it (e.g. to PNG) or remove it"))
                else:
                    ignored.append(Problem(str(p), f"not an image file ({ext or 'no extension'}); ignored"))
    return images, problems, ignored


def _scan_imagefolder(root: Path, source: str, class_dirs: list[tuple[Path, str]]) -> SourceScan:
    """Records of a plain ImageFolder tree: both classes must have a folder."""
    if not class_dirs:
        raise SourceError(f"{root}: no metadata.csv and no 'melanoma' or 'nevus' class folder found")
    for label in ("melanoma", "nevus"):
        if not any(lab == label for _, lab in class_dirs):
            raise SourceError(f"{root}: class folder '{label}' is missing (found "
                              f"{sorted({str(d.relative_to(root)) for d, _ in class_dirs})})")
    return _records_from(class_dirs, source, "imagefolder")


def _records_from(class_dirs: list[tuple[Path, str]], source: str, layout: str) -> SourceScan:
    """Records of every image under each (class folder, label); an empty class folder is a problem."""
    records, problems, ignored = [], [], []
    for folder, label in class_dirs:
        images, unusable, skipped = _images_under(folder)
        problems.extend(unusable)
        ignored.extend(skipped)
        if not images:
            problems.append(Problem(str(folder), f"empty class folder (no {' '.join(IMAGE_EXTS)} images)"))
        records.extend(Record(p, label, None, source) for p in images)
    return SourceScan(tuple(records), tuple(problems), layout, tuple(ignored))


# --- paper preset --------------------------------------------------------------------
def _scan_paper(root: Path) -> SourceScan:
    isic_splits = {d for d, dirnames, _ in _walk(root) if any(_norm(n) == "seborrheic_keratosis" for n in dirnames)}
    if not isic_splits:
        raise SourceError(f"{root}: preset 'paper' found no ISIC 2017 download (no folder holding a "
                          f"'seborrheic_keratosis' folder beside 'melanoma' and 'nevus')")
    mel_dirs, nev_dirs = [], []
    for folder, label in _class_folders(root):
        in_isic = folder.parent in isic_splits
        if label == "melanoma" and in_isic:
            mel_dirs.append((folder, "melanoma"))
        elif label == "nevus" and not in_isic:
            nev_dirs.append((folder, "nevus"))
    if not mel_dirs:
        raise SourceError(f"{root}: preset 'paper': the ISIC 2017 split folders "
                          f"{sorted(str(d) for d in isic_splits)} hold no 'melanoma' folder")
    if not nev_dirs:
        raise SourceError(f"{root}: preset 'paper' found no nevus-classifier download (a 'nevus' folder "
                          f"outside the ISIC 2017 split folders)")
    mel = _records_from(mel_dirs, "paper:isic2017", "paper")
    nev = _records_from(nev_dirs, "paper:nevusclassifier", "paper")
    return SourceScan(mel.records + nev.records, mel.problems + nev.problems, "paper", mel.ignored + nev.ignored)
