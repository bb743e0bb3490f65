"""Bundle documents: tool versions and the model card (artifact digests: :func:`moleport.jsonio.sha256_file`)."""
from __future__ import annotations

import json
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from moleport.spec import ModelSpec

TOOLS = ("moleport", "torch", "onnx", "onnxscript", "onnx2tf", "tensorflow", "ai-edge-litert", "mediapipe",
         "coremltools", "executorch", "torchao", "litert-torch")


def tool_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in TOOLS:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            out[name] = None
    return out


def _evaluations(metrics: Any, prefix: str = "", depth: int = 0) -> list[tuple[str, dict]]:
    """(name, evaluate() dict) pairs found in checkpoint metrics, at most two levels deep (a training run
    stores ``{split: {"at_0.5": ..., "at_threshold": ...}}``; the names read "test at_threshold")."""
    if not isinstance(metrics, dict):
        return []
    if "clinical" in metrics and "paper" in metrics:
        return [(prefix or "metrics", metrics)]
    found: list[tuple[str, dict]] = []
    if depth < 2:
        for key, value in metrics.items():
            found += _evaluations(value, f"{prefix} {key}".strip(), depth + 1)
    return found


def _metrics_section(metrics: Any) -> str:
    rows = []
    for split, ev in _evaluations(metrics):
        for conv, positive in (("clinical", "melanoma"), ("paper", "nevus")):
            m = ev[conv]
            rows.append(f"| {split} | {conv} ({positive} positive) | {m.get('accuracy', float('nan')):.4f} | "
                        f"{m.get('precision', float('nan')):.4f} | {m.get('recall', float('nan')):.4f} | "
                        f"{m.get('specificity', float('nan')):.4f} | {m.get('f1', float('nan')):.4f} | "
                        f"{ev.get('auc') if ev.get('auc') is not None else float('nan'):.4f} | {ev.get('n', '?')} |")
    if not rows:
        return "The checkpoint carries no evaluation metrics.\n"
    head = ("| split | convention | accuracy | precision | recall (sensitivity) | specificity | F1 | AUC | n |\n"
            "|---|---|---|---|---|---|---|---|---|\n")
    return head + "\n".join(rows) + "\n"


#: Where the pipeline puts the evaluation of the shipped artifact (see :func:`with_performance`).
PERFORMANCE_HEADING = "## Clinical performance of the shipped artifact"
PERFORMANCE_PENDING = ("Not evaluated yet. `make export` / `make ship` evaluate the artifact the apps ship, in its own "
                       "runtime, on the test split and on any external data after parity, and fill in this section "
                       "(`python -m moleport.pipeline --help`).")

#: Targets of the shipped MobileNet (issue 16): (metric, data, bound) checked by :func:`performance_section`.
TARGETS = (("auc", "in-distribution", 0.96), ("sensitivity", "in-distribution", 0.95),
           ("specificity", "in-distribution", 0.72), ("auc", "external", 0.85))
_TARGET_NAMES = {"auc": "AUC", "sensitivity": "sensitivity", "specificity": "specificity"}


def _ci_cell(res: dict, key: str) -> str:
    lo, hi = res.get(f"{key}_ci") or (None, None)
    ci = f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else ""
    return f"{res[key]:.3f}{ci}" if res.get(key) is not None else "n/a"


def performance_section(artifact: str, spec: ModelSpec, results: dict[str, dict], kinds: dict[str, str]) -> str:
    """Markdown for the MODEL_CARD: ``results`` maps a data name to its ``evaluation.json`` contents and
    ``kinds`` maps it to "in-distribution" or "external"."""
    rows = [f"| {name} ({kinds[name]}) | {r['n']} ({r['counts']['melanoma']}/{r['counts']['nevus']}) | "
            f"{_ci_cell(r, 'auc')} | {_ci_cell(r, 'sensitivity')} | {_ci_cell(r, 'specificity')} | {r['ece']:.3f} |"
            for name, r in results.items()]
    checks = []
    for key, kind, bound in TARGETS:
        for name, r in results.items():
            if kinds[name] == kind and r.get(key) is not None:
                lo = (r.get(f"{key}_ci") or [None])[0]
                verdict = "met" if r[key] >= bound else "**not met**"
                shown = "demonstrated (lower CI bound above it)" if lo is not None and lo >= bound else "not demonstrated"
                checks.append(f"- {key} ≥ {bound} on {name}: {r[key]:.3f} — {verdict}; {shown}")
    draws = sorted({str((r.get("bootstrap") or {}).get("n_boot", "?")) for r in results.values()})
    return "\n".join([
        f"Artifact `{artifact}` run in its own runtime (moleport's parity runner), at the spec's threshold "
        f"{spec.threshold:.4f} on P(melanoma) (chosen on the validation split, never on these data: the Model "
        f"section says by which rule; temperature "
        f"{spec.temperature:.3f}; colour constancy {spec.color_constancy or 'none'}). Melanoma is the positive class; "
        f"95 % percentile bootstrap intervals ({'/'.join(draws)} draws; lesion-grouped where lesion ids exist). "
        "External data was never used for training or for choosing the threshold.", "",
        "| data | n (melanoma/nevus) | AUC [95% CI] | sensitivity [95% CI] | specificity [95% CI] | ECE |",
        "|---|---|---|---|---|---|", *rows, "",
        "Against the targets (" + "; ".join(f"{kind} {_TARGET_NAMES[key]} ≥ {bound}" for key, kind, bound in TARGETS)
        + "):",
        *(checks or ["- no data to check"]), ""])


def with_performance(card_text: str, section: str) -> str:
    """The card with its performance section's body replaced by ``section``."""
    head, sep, rest = card_text.partition(PERFORMANCE_HEADING + "\n")
    if not sep:
        raise ValueError("MODEL_CARD.md has no performance section heading")
    _, nxt, tail = rest.partition("\n## ")
    return f"{head}{sep}\n{section.strip()}\n{nxt}{tail}" if nxt else f"{head}{sep}\n{section.strip()}\n"


#: Per training run, how its recipe was chosen (measured rows with their commands): ``<run name>.md`` here, with
#: ``<run name>.json``, the run-config values that record documents (tests/train check them against runs.json).
RECIPES_DIR = Path(__file__).resolve().parents[1] / "train" / "recipes"


#: What the card says beside the architecture name (the paper's Table 2 models are MobileNet(V1), AlexNet, ResNet,
#: VGG16 and VGG19).
_ARCH_NOTES = {
    "mobilenet": " (MobileNetV1, the paper's winner in Orhan & Yavşan 2023)",
    "mobilenet_v2": " (MobileNetV2; the paper's winner is MobileNetV1, Orhan & Yavşan 2023)",
    "efficientnet_lite0": " (EfficientNet-Lite0; the paper's winner is MobileNetV1, Orhan & Yavşan 2023)",
    "alexnet": " (as in Orhan & Yavşan 2023)", "resnet50": " (as in Orhan & Yavşan 2023)",
    "vgg16": " (as in Orhan & Yavşan 2023)", "vgg19": " (as in Orhan & Yavşan 2023)",
}


def _recipe_differences(run: dict[str, Any], documented: dict[str, Any]) -> list[str]:
    return [f"{key} {run.get(key)!r} (the record's: {value!r})" for key, value in documented.items()
            if run.get(key) != value]


def recipe_section(run: dict[str, Any] | None) -> str:
    """The card's "how this recipe was chosen" section for a checkpoint's training-run config (``meta['run']``).

    Empty when the run has no recipe record; a warning instead of the record when the checkpoint was trained with
    other values than those the record documents (e.g. ``--run ship --acquisition 0``)."""
    name = (run or {}).get("name")
    md, values = (RECIPES_DIR / f"{name}.md", RECIPES_DIR / f"{name}.json") if name else (None, None)
    if md is None or not md.is_file():
        return ""
    rel = f"src/moleport/train/recipes/{md.name}"
    documented = json.loads(values.read_text(encoding="utf-8")) if values.is_file() else None
    if documented is None:
        return (f"\n## How the recipe was chosen\n`{rel}` has no `{values.name}` saying which configuration it "
                f"documents, so it is not copied here.\n")
    differs = _recipe_differences(run, documented)
    if differs:
        return (f"\n## How the recipe was chosen\nThis checkpoint was trained as run `{name}` but with "
                f"{', '.join(differs)}, so the run's recipe record (`{rel}`) does not describe it.\n")
    return f"\n## How the recipe was chosen\nFrom `{rel}`:\n\n{md.read_text(encoding='utf-8').strip()}\n"


def threshold_note(metrics: Any) -> str:
    """How the checkpoint's training run chose the threshold (its ``metrics['threshold']``), in words."""
    thr = metrics.get("threshold") if isinstance(metrics, dict) else None
    if not isinstance(thr, dict) or thr.get("chosen_on") != "val":
        note = thr.get("note") if isinstance(thr, dict) else None
        return "not chosen on validation data by a moleport training run" + (f" ({note})" if note else "")
    rule = f"for melanoma sensitivity >= {thr['target_sensitivity']:g}"
    if thr.get("confidence") is not None:
        rule = (f"so that the one-sided {thr['confidence']:g} Clopper-Pearson lower bound on melanoma sensitivity is "
                f">= {thr['target_sensitivity']:g} (val: {thr['sensitivity_lower_bound']:.3f})")
    return (f"chosen on the validation split {rule}; val sensitivity {thr['sensitivity']:.3f}, specificity "
            f"{thr['specificity']:.3f}")


def model_card(name: str, spec: ModelSpec, meta: dict[str, Any], files: list[dict], failures: list[dict]) -> str:
    """MODEL_CARD.md for a bundle."""
    artifacts = "\n".join(f"- `{f['path']}` — {f['format']} {f['precision']}, {f['bytes'] / 1e6:.1f} MB" for f in files)
    failed = "\n".join(f"- {f['format']} {f['precision']}: {f['error']}" for f in failures) or "- none"
    return f"""# Model card: {name}

## Intended use
Decision support for a person and their clinician when looking at a pigmented skin lesion: the model
estimates P(melanoma) vs P(nevus) for one dermoscopic-style image. **It is not a diagnosis** and must
not replace examination by a dermatologist; a low score does not rule out melanoma.

## Model
- Architecture: `{spec.architecture}`{_ARCH_NOTES.get(spec.architecture, '')}, one sigmoid output.
- Input (every artifact): RGB, {spec.input_size}x{spec.input_size}, float32 values 0–255, resized by
  `{spec.resize_rule}`; colour constancy ({spec.color_constancy or 'none'}) and normalisation (mean {list(spec.mean)},
  std {list(spec.std)} on 0–1 values) happen inside the graph, as does the temperature ({spec.temperature:.4g}).
- Output: `[P({spec.labels[0]}), P({spec.labels[1]})]`. Decision threshold on P({spec.positive_class}): **{spec.threshold:g}**
  (Core ML's `classLabel` is an argmax at 0.5; use the probabilities and this threshold), {threshold_note(meta.get('metrics'))}.
- Source checkpoint epoch: {meta.get('epoch')}; split manifest sha256: `{meta.get('manifest_sha256')}`.

## Training data and licence
Trained on the split recorded by the manifest hash above — melanoma and nevus images (HAM10000-style
dermatoscopic data, CC BY-NC-SA 4.0 for HAM10000; synthetic images in tests). Check the licence of the data
you trained on before distributing the model. The model weights are released under Apache-2.0.

## Metrics (from the checkpoint; both conventions)
`clinical`: melanoma is the positive class (recall = melanoma sensitivity). `paper`: nevus is positive, as in the paper's Keras setup.

{_metrics_section(meta.get('metrics'))}
{recipe_section(meta.get('run'))}
{PERFORMANCE_HEADING}

{PERFORMANCE_PENDING}

## Known limits
- The paper's dataset mixes two sources whose images differ in acquisition; a model can learn to
  recognise the **source** instead of the lesion, so reported accuracy may not transfer to new cameras or clinics.
- Only melanoma vs nevus: other lesions (basal cell carcinoma, seborrhoeic keratosis, …) get a
  meaningless answer. Skin types, body sites and image devices underrepresented in training may perform worse.
- int8 and fp16 artifacts differ slightly from fp32; see the parity report before shipping one.

## Artifacts
{artifacts or '- none'}

## Export failures
{failed}
"""


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, allow_nan=False, default=str) + "\n"
