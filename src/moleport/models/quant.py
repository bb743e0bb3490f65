"""The int8 backbone: one quantization scheme, one saved program, shared by training (QAT) and export.

Only the CNN backbone (normalised NCHW -> one logit) is ever quantized. It is exported on its own and
annotated by ExecuTorch's XNNPACK quantizer (symmetric int8: per-channel weights, per-tensor
activations), so the raw-pixel pre-processing and the head that the export wrapper puts around it
stay fp32 by construction — in ExecuTorch and in TFLite, which are both lowered from this program.

``save_program`` / ``load_program`` keep the converted (quantize/dequantize) backbone as a
``torch.export`` program (``.pt2``) with a dynamic batch; the weights are kept next to their
quantize ops (``fold_quantize=False``) because the TFLite converter reads the quantization
parameters from them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from moleport.quiet import logger_level

with logger_level("torch.utils._pytree"):  # torchao's import logs a torch.compile deprecation (KernelPreference)
    from torchao.quantization.pt2e import FakeQuantize
    from torchao.quantization.pt2e.quantizer.quantizer import Q_ANNOTATION_KEY

#: Largest batch the saved program accepts (torch.export dynamic dimension).
MAX_BATCH = 64
SCHEME = {"quantizer": "executorch XNNPACKQuantizer, symmetric", "weights": "int8 per-channel",
          "activations": "int8 per-tensor",
          "scope": "backbone only (normalised NCHW -> logit); pre-processing and head fp32; the classifier "
                   "Linear (1024 -> 1 logit) and the first float_blocks feature blocks fp32 (qat.json)"}


@dataclass(frozen=True)
class Scope:
    """Which layers of the backbone stay fp32 (everything else: int8 weights and activations).

    ``float_blocks``: the first N modules of ``model.features`` (MobileNetV1: the stem conv, then one
    depthwise-separable block each). ``float_classifier``: the final Linear (1,024 weights), whose int8
    *output* is the logit itself; measured alone it costs little (val p99 |Δp| 0.003), and fp32 costs nothing.
    Measured on the seed-0 quick model (``python -m moleport.train.sensitivity``, 200 val images; README "int8"):
    the first blocks dominate the int8 error (the stem alone p99 0.071 of the 0.092 of everything); PTQ with
    the stem + 3 blocks + classifier fp32 gives val p99 0.019 for 21.6 % of the multiply-adds and 0.96 % of the
    weights (``float_share``)."""

    float_blocks: int = 0
    float_classifier: bool = True

    def float_modules(self) -> tuple[str, ...]:
        head = ("classifier",) if self.float_classifier else ()
        return tuple(f"features.{i}" for i in range(self.float_blocks)) + head


def within(path: str, names: tuple[str, ...]) -> bool:
    """Whether the module ``path`` (fully qualified, e.g. ``features.0.dw.conv``) is one of ``names`` or inside one."""
    return any(path == n or path.startswith(n + ".") for n in names)


def _in_modules(node: torch.fx.Node, names: tuple[str, ...]) -> bool:
    """Whether ``node`` was traced inside one of the modules ``names``."""
    stack = node.meta.get("nn_module_stack") or {}
    return any(within(str(v[0]), names) for v in stack.values())


class QuantError(RuntimeError):
    """The int8 backbone cannot be built, saved or loaded."""


def quantizer(qat: bool = False, scope: Scope = Scope()):
    """The one quantizer configuration (post-training calibration or quantization-aware training), int8
    everywhere in the backbone except the fp32 layers of ``scope``.

    Activation ranges come from a histogram observer (the MSE-optimal clipping range) in both modes.
    The QAT default, a moving-average min/max, takes the ReLU6 cap of 6 as the range although most
    activations are far below it: on the quick model that alone cost mean |Δp| 0.08 against 0.034.
    For QAT the histogram ranges are calibrated first and then frozen (``freeze_observers``).
    """
    import dataclasses

    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer, get_symmetric_quantization_config)
    from torchao.quantization.pt2e import HistogramObserver

    config = get_symmetric_quantization_config(is_per_channel=True, is_qat=qat)
    if qat:
        act = dataclasses.replace(config.input_activation, observer_or_fake_quant_ctr=CalibratedFakeQuantize.with_args(
            observer=HistogramObserver, eps=2**-12))
        config = dataclasses.replace(config, input_activation=act, output_activation=act)

    class Relu6FusingQuantizer(XNNPACKQuantizer):
        def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
            marked = keep_float(model, scope.float_modules())
            annotate_conv_relu6(model, config)
            model = super().annotate(model)
            for node in marked:  # unannotated again: no quantize op, and torchao's QAT conv-bn rewrite needs
                node.meta.pop(Q_ANNOTATION_KEY, None)  # a conv either quantized or without annotation
            return model

    return Relu6FusingQuantizer().set_global(config)


_HARDTANH = ("aten.hardtanh.default", "aten.hardtanh_.default")
_BATCH_NORM = ("aten.batch_norm.default", "aten._native_batch_norm_legit.default",
               "aten._native_batch_norm_legit_no_training.default", "aten.cudnn_batch_norm.default")


def keep_float(model: torch.fx.GraphModule, modules: tuple[str, ...]) -> list[torch.fx.Node]:
    """Mark every node traced inside ``modules`` as annotated with no quantization spec, so that no annotator
    quantizes it (XNNPACKQuantizer's ``set_module_name(name, None)`` is not supported); returns those nodes."""
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation

    marked = [n for n in model.graph.nodes if n.op == "call_function" and _in_modules(n, modules)]
    for node in marked:
        node.meta[Q_ANNOTATION_KEY] = QuantizationAnnotation(_annotated=True)
    return marked


def annotate_conv_relu6(model: torch.fx.GraphModule, config) -> int:
    """Annotate every conv [-> batch-norm] -> ReLU6 (``hardtanh``) as ONE quantized partition: int8 input and
    weight on the conv, the int8 output on the ReLU6 (its own observer, range within [0, 6]).

    The XNNPACK quantizer fuses only ``relu`` into a conv; ``hardtanh`` is a shared-observer op there, so the
    quantized tensor between conv and ReLU6 takes the *pre-activation* range (per-channel maxima up to 18 on
    the quick model) and the ReLU6 output reuses that scale, losing bits on every activation of MobileNetV1.
    Measured on the quick model (PTQ, 128 calibration images, val): mean |Δp| 0.045 -> 0.033, p99 0.162 -> 0.127;
    ExecuTorch/LiteRT test p99 0.147 (was 0.13-0.21). XNNPACK fuses the clamp into the conv
    (``FuseActivationPass``), TFLite has a fused RELU6 on CONV_2D, so the graph lowers the same way a
    conv -> ReLU partition does. Returns the number of partitions annotated."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer_utils import (
        _is_annotated, _mark_nodes_as_annotated)
    from torchao.quantization.pt2e.quantizer import (QuantizationAnnotation, get_bias_qspec, get_input_act_qspec,
                                                     get_output_act_qspec, get_weight_qspec)
    from torchao.quantization.pt2e.quantizer.quantizer import Q_ANNOTATION_KEY
    from torchao.quantization.pt2e.utils import _is_conv_node

    count = 0
    for act in model.graph.nodes:
        if act.op != "call_function" or str(act.target) not in _HARDTANH:
            continue
        chain, src = [act], act.args[0]
        if getattr(src, "op", None) == "call_function" and str(src.target) == "<built-in function getitem>":
            chain.append(src)
            src = src.args[0]
        if getattr(src, "op", None) == "call_function" and str(src.target) in _BATCH_NORM:
            chain.append(src)
            src = src.args[0]
        if not isinstance(src, torch.fx.Node) or not _is_conv_node(src):
            continue
        if len(src.users) > 1 or any(len(n.users) > 1 for n in chain[1:] if "getitem" in str(n.target)):
            continue  # the conv's (normalised) output must reach nothing but this ReLU6
        conv, weight = src, src.args[1]
        bias = src.args[2] if len(src.args) > 2 else None
        qspec = {conv.args[0]: get_input_act_qspec(config), weight: get_weight_qspec(config)}
        partition = [act, *chain[1:], conv, weight]
        if isinstance(bias, torch.fx.Node):
            qspec[bias] = get_bias_qspec(config)
            partition.append(bias)
        if _is_annotated(partition):
            continue
        conv.meta[Q_ANNOTATION_KEY] = QuantizationAnnotation(input_qspec_map=qspec, _annotated=True)
        act.meta[Q_ANNOTATION_KEY] = QuantizationAnnotation(output_qspec=get_output_act_qspec(config), _annotated=True)
        _mark_nodes_as_annotated(partition)
        count += 1
    return count


class CalibratedFakeQuantize(FakeQuantize):
    """A FakeQuantize that, while its observer is on, only observes (no fake quantization, and no costly
    histogram range search per batch); the range is searched once, when the observer is switched off."""

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        if self.observer_enabled[0] == 1:
            self.activation_post_process(X.detach())
            self.stale = True
            return X
        if getattr(self, "stale", False):
            scale, zero = self.calculate_qparams()
            self.scale.resize_(scale.shape).copy_(scale)
            self.zero_point.resize_(zero.shape).copy_(zero)
            self.stale = False
        return super().forward(X)


def export_backbone(model: nn.Module, size: int, qat: bool = False) -> torch.fx.GraphModule:
    """``model`` as an exported graph with a dynamic batch, ready for prepare_pt2e (eval form) or
    prepare_qat_pt2e (``qat``: exported in train form, whose conv + batch-norm pattern the QAT fusion
    rewrites) after :func:`with_torchao_bn_eps`. Move a QAT graph to eval with ``move_exported_model_to_eval``."""
    import copy

    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    example = (torch.zeros(2, 3, size, size),)  # batch > 1: a size-1 dimension would be specialised
    if not qat:
        return torch.export.export(model.eval(), example, dynamic_shapes=({0: batch},)).module()
    model = with_torchao_bn_eps(copy.deepcopy(model)).train()
    for mod in model.modules():  # tracing runs the example through train-form batch-norm: keep its statistics
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            mod.momentum = 0.0
    return torch.export.export(model, example, dynamic_shapes=({0: batch},)).module()


#: The batch-norm epsilon torchao's PT2E QAT rewrites assume (qat_utils.py notes that eps cannot be set yet;
#: export_utils._replace_batchnorm likewise): 1e-5 whatever the module says.
TORCHAO_BN_EPS = 1e-5


def with_torchao_bn_eps(model: nn.Module) -> nn.Module:
    """The same eval-mode function with every batch-norm at eps 1e-5: running_var += eps - 1e-5.

    MobileNetV1 (Keras layout) uses eps 1e-3. torchao's QAT conv-bn fusion and its train/eval switch
    hard-code 1e-5, which moved the quick model's logits by 0.74 before any quantization (measured) and
    is why a plain prepare_qat_pt2e collapsed this model. sqrt(var + eps) is unchanged, so eval-mode
    outputs are identical; only train-mode batch statistics would differ, and QAT here keeps BN frozen."""
    for mod in model.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm) and mod.eps != TORCHAO_BN_EPS:
            with torch.no_grad():
                mod.running_var.add_(mod.eps - TORCHAO_BN_EPS)
            mod.eps = TORCHAO_BN_EPS
    return model


def convert(prepared: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """The quantized (q/dq) graph of a prepared one, in eval form; ``prepared`` is left untouched."""
    import copy

    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    from torchao.quantization.pt2e import allow_exported_model_train_eval

    frozen = copy.deepcopy(prepared)
    move_exported_model_to_eval(frozen)
    converted = convert_pt2e(frozen, fold_quantize=False)
    allow_exported_model_train_eval(converted)  # it sits inside the export wrapper, whose .eval() reaches it
    return converted


@torch.no_grad()
def post_training_quantize(model: nn.Module, size: int, batches, scope: Scope = Scope()) -> torch.fx.GraphModule:
    """Calibrate the backbone's observers on ``batches`` (normalised NCHW tensors) and convert."""
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

    prepared = prepare_pt2e(export_backbone(model, size), quantizer(qat=False, scope=scope))
    for x in batches:
        prepared(x)
    return convert(prepared)


def fold_weight_quantization(module: nn.Module) -> nn.Module:
    """A copy of the int8 backbone whose weights are stored as int8 constants (the quantize op folded), the
    form ExecuTorch's XNNPACK partitioner lowers to its QS8 kernels; the TFLite converter reads the unfolded one."""
    import copy

    from torchao.quantization.pt2e.constant_fold import constant_fold
    from torchao.quantization.pt2e.quantize_pt2e import _quant_node_constraint

    folded = copy.deepcopy(module)
    if not isinstance(folded, torch.fx.GraphModule):
        raise QuantError(f"int8 backbone is a {type(folded).__name__}, not a graph module")
    constant_fold(folded, _quant_node_constraint)
    return folded


def count_quantized(graph_module: torch.fx.GraphModule) -> dict[str, int]:
    """Quantized layers of a converted graph: convs/linears whose weight and input come through dequantize."""
    counts = {"conv": 0, "linear": 0, "float_conv": 0, "float_linear": 0}
    for node in graph_module.graph.nodes:
        name = str(node.target)
        kind = "conv" if "conv" in name else "linear" if "linear" in name else None
        if node.op != "call_function" or kind is None or len(node.args) < 2:
            continue
        x, w = node.args[0], node.args[1]
        quantized = all(getattr(a, "op", None) == "call_function" and "dequantize" in str(a.target) for a in (x, w))
        counts[kind if quantized else f"float_{kind}"] += 1
    return counts


def float_share(model: nn.Module, scope: Scope, size: int) -> dict[str, float]:
    """The share of the backbone's conv/linear weights and multiply-adds that ``scope`` keeps fp32, counted
    from the layers' shapes in one forward pass at ``size`` x ``size`` (qat.json, README)."""
    stats: dict[str, list[int]] = {}  # module name -> [weights, multiply-adds]
    names = {m: n for n, m in model.named_modules()}

    def hook(module, _inputs, output):
        macs = module.weight.numel() * (output[0, 0].numel() if isinstance(module, nn.Conv2d) else 1)
        stats[names[module]] = [module.weight.numel(), macs]

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, size, size))
    finally:
        for h in handles:
            h.remove()
    keep = scope.float_modules()
    fp32 = [v for n, v in stats.items() if within(n, keep)]
    total = [sum(v[i] for v in stats.values()) for i in (0, 1)]
    return {"fp32_weight_fraction": sum(v[0] for v in fp32) / total[0],
            "fp32_mac_fraction": sum(v[1] for v in fp32) / total[1], "weights": total[0], "macs": total[1]}


def save_program(converted: torch.fx.GraphModule, size: int, path: str | Path) -> Path:
    """``torch.export.save`` of the converted backbone (dynamic batch), written atomically."""
    path = Path(path)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    example = (torch.zeros(2, 3, size, size),)
    ep = torch.export.export(converted, example, dynamic_shapes=({0: batch},))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")  # torch.export.save warns unless the name ends in .pt2
    try:
        torch.export.save(ep, str(tmp))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_program(path: str | Path) -> nn.Module:
    """The saved int8 backbone as a module (normalised NCHW -> logit) that may sit inside another module."""
    from torchao.quantization.pt2e import allow_exported_model_train_eval

    p = Path(path)
    if not p.is_file():
        raise QuantError(f"{p}: int8 backbone program not found")
    try:
        module = torch.export.load(str(p)).module()
    except Exception as exc:  # noqa: BLE001 — torch raises many types for a bad file
        raise QuantError(f"{p}: not a saved torch.export program ({type(exc).__name__}: {exc})") from exc
    allow_exported_model_train_eval(module)
    return module
