"""Where things live: the repo's artifacts folder and the optional ../shared folder."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def artifacts_dir() -> Path:
    return Path(os.environ.get("MOLEPORT_ARTIFACTS", REPO_ROOT / "artifacts"))


def shared_dir() -> Path | None:
    """``$MOLEPORT_SHARED`` or ``../shared`` beside the checkout; None when absent."""
    env = os.environ.get("MOLEPORT_SHARED")
    cand = Path(env) if env else REPO_ROOT.parent / "shared"
    return cand if cand.is_dir() else None


def shared_path(*parts: str) -> Path | None:
    """A path under ../shared, or None when it (or ../shared) is absent."""
    base = shared_dir()
    if base is None:
        return None
    p = base.joinpath(*parts)
    return p if p.exists() else None
