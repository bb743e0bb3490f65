"""The reference: PyTorch eager fp32 from the bundle's source checkpoint."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from moleport.runtimes.base import Runner, RunnerError
from moleport.preprocess import melanoma_probability, normalize_batch, view_logits
from moleport.procstate import torch_threads
from moleport.spec import ModelSpec

RUNTIME = "torch"


class TorchReferenceRunner(Runner):
    runtime = RUNTIME
    implementation = "pytorch-eager-fp32"

    def __init__(self, checkpoint: str | Path, spec: ModelSpec | None = None, threads: int = 1,
                 batch_size: int = 32):
        self.checkpoint = Path(checkpoint)
        self.batch_size = int(batch_size)
        self.model = None
        super().__init__(None, spec, threads)  # spec is replaced by the checkpoint's own on load

    @property
    def name(self) -> str:
        return f"{self.checkpoint.name}@torch"

    def info(self) -> dict[str, Any]:
        return {"threads": self.threads, "checkpoint": str(self.checkpoint), "torch": torch.__version__}

    def _load(self) -> None:
        from moleport.models.checkpoint import load_checkpoint

        if not self.checkpoint.is_file():
            raise RunnerError(f"reference checkpoint {self.checkpoint} not found (manifest.json 'checkpoint')")
        loaded = load_checkpoint(self.checkpoint, map_location="cpu")
        self.model = loaded.model.float().eval()
        if self.spec is not None and _contract(self.spec) != _contract(loaded.spec):
            raise RunnerError(f"{self.checkpoint}: its ModelSpec differs from the bundle's spec "
                              f"({_contract(loaded.spec)} vs {_contract(self.spec)})")
        self.spec = loaded.spec

    @torch.no_grad()
    def _predict(self, x: np.ndarray) -> np.ndarray:
        out = []
        with torch_threads(self.threads):
            for i in range(0, len(x), self.batch_size):
                batch = np.array(x[i:i + self.batch_size])
                # with spec.tta: the mean logit over preprocess.tta_views (the exports do it in-graph, on their own)
                logits = view_logits(lambda b: self.model(normalize_batch(b, self.spec)), batch, self.spec)
                out.append(melanoma_probability(logits.double().reshape(-1), self.spec).numpy())
        return np.concatenate(out) if out else np.zeros(0)


def _contract(spec: ModelSpec) -> dict[str, Any]:
    """The fields that change what a model computes from pixels (not ``threshold``: a decision rule applied to
    P(melanoma) by consumers, which a site calibration moves without touching the checkpoint or the artifacts)."""
    keys = ("architecture", "input_size", "color_order", "mean", "std", "labels", "color_constancy", "temperature", "tta")
    d = spec.to_dict()
    return {k: d[k] for k in keys}
