"""numpy kernels for the Core ML ML Program (MIL) ops a MobileNet classifier uses.

Each kernel takes the op's MIL inputs as keyword arguments (tensors as numpy arrays, const
strings as ``str``) and returns one array, or a tuple for ops with several outputs.

Numerics, chosen to approximate how Core ML runs an fp16 program: a kernel promotes float16
operands to float32 and computes in float32 (convolution and matmul go through BLAS sgemm,
i.e. products summed in float32; depthwise convolution sums its taps in float32; reductions
sum in float32). The interpreter then rounds each op's result *once* to the op's declared
output dtype, so in an fp16 program every intermediate tensor is float16, exactly as the
program's types say. An fp32 program is computed in float32 throughout.

Semantics follow the coremltools MIL op definitions (``coremltools.converters.mil.mil.ops.
defs.iOS15``..``iOS18``): NCHW layout, conv ``weight`` [C_out, C_in/groups, kH, kW],
``pad`` as [before_0, after_0, before_1, after_1, ...], ``linear`` weight [D_out, D_in].
"""
from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any, Callable, Mapping

import numpy as np

# MIL ``cast``/``dtype`` strings -> numpy dtypes.
CAST_DTYPES = {
    "fp16": np.float16, "fp32": np.float32, "fp64": np.float64,
    "int8": np.int8, "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16,
    "int32": np.int32, "int64": np.int64, "bool": np.bool_,
}


class UnsupportedOpError(RuntimeError):
    """The program uses an op (or an op variant) the reference interpreter does not implement."""


# --------------------------------------------------------------------------- fp16 <-> fp32
# numpy's own float16 casts are exact but take a very slow path for subnormal values
# (~100x), and fp16 activations are full of subnormals. These give bit-identical results
# faster: a 65536-entry table for fp16 -> fp32, integer ops for subnormal fp32 -> fp16
# (checked against ``astype`` over all 65536 halves and random / tie-case floats).

def _half_table() -> np.ndarray:
    table = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    table = table.astype(np.float32)  # the exact (slow-for-subnormals) cast, done once
    table.flags.writeable = False
    return table


HALF_TO_FLOAT = _half_table()  # read-only: float32 value of every float16 bit pattern
F32_ABS_MASK = np.uint32(0x7FFFFFFF)
F32_F16_MIN_NORMAL_BITS = np.uint32(0x38800000)  # float32 bits of 2**-14


def to_float32(x: Any) -> np.ndarray:
    """Exact float16 -> float32 by table lookup (other dtypes returned unchanged)."""
    h = np.asarray(x)
    if h.dtype != np.float16:
        return h
    return HALF_TO_FLOAT[h.view(np.uint16)]


def to_float16(x: Any) -> np.ndarray:
    """float32 -> float16, IEEE round-to-nearest-even (overflow to inf, like ``astype``)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    mag = x.view(np.uint32) & F32_ABS_MASK
    mag -= np.uint32(1)  # 0 wraps to 2**32-1, so the test below is 0 < |x| < 2**-14
    sub = mag < F32_F16_MIN_NORMAL_BITS - np.uint32(1)
    with np.errstate(over="ignore"):
        if not sub.any():
            return x.astype(np.float16)
        out = np.where(sub, np.float32(0), x).astype(np.float16)
    xs = x[sub]  # subnormal result: round |x| / 2**-24 to an integer, RNE; 1024 is 2**-14
    bits = np.rint(np.abs(xs) * np.float32(2.0 ** 24)).astype(np.uint16)
    out.view(np.uint16)[sub] = bits | (np.signbit(xs).astype(np.uint16) << 15)
    return out


def round_to(x: Any, dtype: Any) -> np.ndarray:
    """``x`` as ``dtype``: the single rounding each op's result gets to its declared type."""
    a = np.asarray(x)
    if a.dtype == dtype:
        return a
    if dtype == np.float16:
        return a.astype(np.float16) if a.dtype == np.float64 else to_float16(a)
    return to_float32(a).astype(dtype)


# --------------------------------------------------------------------------- helpers

def _f(x: Any) -> np.ndarray:
    """Operand as an array, float16 promoted to float32 (the accumulation dtype)."""
    return to_float32(x)


def _ints(v: Any, default: tuple[int, ...] = ()) -> tuple[int, ...]:
    return default if v is None else tuple(int(i) for i in np.ravel(v))


def _bools(v: Any, n: int) -> tuple[bool, ...]:
    return (False,) * n if v is None else tuple(bool(b) for b in np.ravel(v))


def _spatial_pads(pad_type: str, pad: Any, size: tuple[int, ...], kernel: tuple[int, ...],
                  strides: tuple[int, ...], dilations: tuple[int, ...]) -> list[tuple[int, int]]:
    """(before, after) padding per spatial dim for MIL pad_type valid/same/same_lower/custom."""
    if pad_type == "valid":
        return [(0, 0)] * len(size)
    if pad_type == "custom":
        p = _ints(pad, (0,) * (2 * len(size)))
        return [(p[2 * i], p[2 * i + 1]) for i in range(len(size))]
    if pad_type not in ("same", "same_lower"):
        raise UnsupportedOpError(f"pad_type {pad_type!r}")
    pads = []
    for n, k, s, d in zip(size, kernel, strides, dilations):
        total = max(0, (math.ceil(n / s) - 1) * s + d * (k - 1) + 1 - n)
        small, big = total // 2, total - total // 2
        pads.append((small, big) if pad_type == "same" else (big, small))
    return pads


def _out_size(n: int, k: int, s: int, d: int) -> int:
    return (n - d * (k - 1) - 1) // s + 1


def _taps(xp: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int],
          dilations: tuple[int, int]):
    """Yield (i, j, view) for each kernel tap: the strided input window it multiplies."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, strides, dilations
    ho = _out_size(xp.shape[2], kh, sh, dh)
    wo = _out_size(xp.shape[3], kw, sw, dw)
    if ho < 1 or wo < 1:
        raise ValueError(f"kernel {kernel} does not fit input {xp.shape[2:]}")
    for i in range(kh):
        for j in range(kw):
            yield i, j, xp[:, :, i * dh: i * dh + sh * (ho - 1) + 1: sh,
                           j * dw: j * dw + sw * (wo - 1) + 1: sw]


# --------------------------------------------------------------------------- conv / linear

def _grouped_conv(xp: np.ndarray, w: np.ndarray, strides, dilations, groups: int) -> np.ndarray:
    """Standard / grouped conv as im2col + one batched sgemm per group."""
    n, c = xp.shape[:2]
    o, cg, kh, kw = w.shape
    taps = list(_taps(xp, (kh, kw), strides, dilations))
    ho, wo = taps[0][2].shape[2:]
    if kh == kw == 1:
        cols = np.ascontiguousarray(taps[0][2]).reshape(n, groups, cg, ho * wo)
    else:  # (N, C, kh*kw, Ho, Wo): per group the rows run (c, i, j) like the weight does
        cols = np.stack([v for _, _, v in taps], axis=2).reshape(n, groups, cg * kh * kw, ho * wo)
    out = np.matmul(w.reshape(groups, o // groups, cg * kh * kw), cols)
    return out.reshape(n, o, ho, wo)


def _depthwise_conv(xp: np.ndarray, w: np.ndarray, strides, dilations) -> np.ndarray:
    """groups == C_in: sum of kH*kW shifted-window products, vectorised over N, C, H, W."""
    c, o = xp.shape[1], w.shape[0]
    if o != c:  # channel multiplier: output channel k reads input channel k // (o // c)
        xp = np.repeat(xp, o // c, axis=1)
    out = None
    for i, j, view in _taps(xp, w.shape[2:], strides, dilations):
        term = view * w[:, 0, i, j].reshape(1, o, 1, 1)
        out = term if out is None else np.add(out, term, out=out)
    return out


def conv(x, weight, bias=None, strides=None, pad_type="valid", pad=None, dilations=None,
         groups=1):
    x, w = _f(x), _f(weight)
    if x.ndim != 4 or w.ndim != 4:
        raise UnsupportedOpError(f"conv on rank-{x.ndim} input (only 2-D conv is implemented)")
    strides, dilations = _ints(strides, (1, 1)), _ints(dilations, (1, 1))
    pads = _spatial_pads(str(pad_type), pad, x.shape[2:], w.shape[2:], strides, dilations)
    if any(p for pair in pads for p in pair):
        x = np.pad(x, [(0, 0), (0, 0), *pads])
    g = int(groups)
    if x.shape[1] != w.shape[1] * g or w.shape[0] % g:
        raise ValueError(f"conv: input {x.shape}, weight {w.shape} and groups={g} disagree")
    if g > 1 and g == x.shape[1]:
        out = _depthwise_conv(x, w, strides, dilations)
    else:
        out = _grouped_conv(x, w, strides, dilations, g)
    if bias is not None:
        out = out + _f(bias).reshape(1, -1, 1, 1)
    return out


def linear(x, weight, bias=None):
    out = np.matmul(_f(x), _f(weight).T)
    return out if bias is None else out + _f(bias)


def matmul(x, y, transpose_x=False, transpose_y=False):
    x, y = _f(x), _f(y)
    if bool(transpose_x):
        x = np.swapaxes(x, -1, -2)
    if bool(transpose_y):
        y = np.swapaxes(y, -1, -2)
    return np.matmul(x, y)


def batch_norm(x, mean, variance, gamma=None, beta=None, epsilon=1e-5):
    x = _f(x)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    scale = 1.0 / np.sqrt(_f(variance) + np.float32(epsilon))
    if gamma is not None:
        scale = scale * _f(gamma)
    out = (x - _f(mean).reshape(shape)) * scale.reshape(shape)
    return out if beta is None else out + _f(beta).reshape(shape)


# --------------------------------------------------------------------------- pooling / reductions

def _pool(x, kernel_sizes, strides, pad_type, pad, reducer: str, exclude_padding=False,
          ceil_mode=False):
    x = _f(x)
    if bool(ceil_mode):
        raise UnsupportedOpError("pooling with ceil_mode=True")
    if x.ndim != 4:
        raise UnsupportedOpError(f"pooling on rank-{x.ndim} input (only 2-D pooling)")
    k = _ints(kernel_sizes)
    s = _ints(strides, (1, 1))
    pads = _spatial_pads(str(pad_type), pad, x.shape[2:], k, s, (1, 1))
    fill = -np.inf if reducer == "max" else 0.0
    xp = np.pad(x, [(0, 0), (0, 0), *pads], constant_values=fill)
    views = [v for _, _, v in _taps(xp, k, s, (1, 1))]
    if reducer == "max":
        return np.maximum.reduce(views)
    total = np.add.reduce(views)
    if not bool(exclude_padding):
        return total / np.float32(k[0] * k[1])
    ones = np.pad(np.ones((1, 1) + x.shape[2:], np.float32), [(0, 0), (0, 0), *pads])
    return total / np.add.reduce([v for _, _, v in _taps(ones, k, s, (1, 1))])


def avg_pool(x, kernel_sizes, strides=None, pad_type="valid", pad=None,
             exclude_padding_from_average=False, ceil_mode=False):
    return _pool(x, kernel_sizes, strides, pad_type, pad, "avg",
                 exclude_padding_from_average, ceil_mode)


def max_pool(x, kernel_sizes, strides=None, pad_type="valid", pad=None, ceil_mode=False):
    return _pool(x, kernel_sizes, strides, pad_type, pad, "max", False, ceil_mode)


def _reduction(fn: Callable) -> Callable:
    def reduce(x, axes=None, keep_dims=False):
        ax = None if axes is None else _ints(axes)
        return fn(_f(x), axis=ax, keepdims=bool(keep_dims))
    return reduce


# --------------------------------------------------------------------------- elementwise

def _unary(fn: Callable) -> Callable:
    return lambda x: fn(_f(x))


def _binary(fn: Callable) -> Callable:
    return lambda x, y: fn(_f(x), _f(y))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))  # stable for both signs
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype)


def clip(x, alpha, beta):
    return np.minimum(np.maximum(_f(x), _f(alpha)), _f(beta))


def leaky_relu(x, alpha=0.01):
    x = _f(x)
    return np.where(x >= 0, x, x * _f(alpha))


def softmax(x, axis=-1):
    x = _f(x)
    e = np.exp(x - x.max(axis=int(axis), keepdims=True))
    return e / e.sum(axis=int(axis), keepdims=True)


def rsqrt(x, epsilon=1e-12):
    return 1.0 / np.sqrt(_f(x) + _f(epsilon))


def log(x, epsilon=1e-45):
    """MIL ``log``: natural log of ``x + epsilon``."""
    with np.errstate(divide="ignore"):
        return np.log(_f(x) + _f(epsilon))


def cast(x, dtype):
    if str(dtype) not in CAST_DTYPES:
        raise UnsupportedOpError(f"cast to dtype {dtype!r}")
    return round_to(x, CAST_DTYPES[str(dtype)])


# --------------------------------------------------------------------------- shape ops

def pad(x, pad, mode="constant", constant_val=0.0):
    x, p = np.asarray(x), _ints(pad)
    n = len(p) // 2
    widths = [(0, 0)] * (x.ndim - n) + [(p[2 * i], p[2 * i + 1]) for i in range(n)]
    mode = str(mode)
    if mode == "constant":
        return np.pad(x, widths, constant_values=np.asarray(constant_val).item())
    if mode not in ("reflect", "replicate"):
        raise UnsupportedOpError(f"pad mode {mode!r}")
    return np.pad(x, widths, mode="reflect" if mode == "reflect" else "edge")


def reshape(x, shape):
    return np.reshape(x, _ints(shape))


def squeeze(x, axes=None):
    return np.squeeze(x) if axes is None else np.squeeze(x, axis=_ints(axes))


def expand_dims(x, axes):
    return np.expand_dims(x, axis=_ints(axes))


def flatten2d(x, axis=1):
    x = np.asarray(x)
    return x.reshape(int(np.prod(x.shape[:int(axis)])), -1)


def transpose(x, perm):
    return np.transpose(x, _ints(perm))


def concat(values, axis, interleave=False):
    if bool(interleave):
        raise UnsupportedOpError("concat with interleave=True")
    return np.concatenate([np.asarray(v) for v in values], axis=int(axis))


def gather(x, indices, axis=0, batch_dims=0, validate_indices=False):
    """MIL ``gather`` (iOS15+): ``np.take`` along ``axis``; negative indices count from the end, as in MIL."""
    if int(batch_dims) != 0:
        raise UnsupportedOpError(f"gather with batch_dims={int(batch_dims)}")
    x = np.asarray(x)
    idx = np.asarray(indices).astype(np.int64)
    axis = int(axis)
    n = x.shape[axis]
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise ValueError(f"gather: indices outside [-{n}, {n}) on axis {axis}")
    return np.take(x, np.where(idx < 0, idx + n, idx), axis=axis)


def stack(values, axis):
    return np.stack([np.asarray(v) for v in values], axis=int(axis))


def slice_by_index(x, begin, end, stride=None, begin_mask=None, end_mask=None,
                   squeeze_mask=None):
    x = np.asarray(x)
    b, e = _ints(begin), _ints(end)
    st = _ints(stride, (1,) * x.ndim)
    bm, em, sm = (_bools(m, x.ndim) for m in (begin_mask, end_mask, squeeze_mask))
    index = []
    for d in range(x.ndim):
        if sm[d]:
            index.append(b[d])
            continue
        index.append(slice(None if bm[d] else b[d], None if em[d] else e[d], st[d]))
    return x[tuple(index)]


def slice_by_size(x, begin, size):
    x = np.asarray(x)
    index = tuple(slice(b, None if s == -1 else b + s)
                  for b, s in zip(_ints(begin), _ints(size)))
    return x[index]


def classify(probabilities, classes):
    """Core ML's classifier head: (label of the top class per row, the probabilities)."""
    probs = np.asarray(probabilities)
    labels = np.asarray(list(classes))
    return labels[np.argmax(probs, axis=-1)], probs


# --------------------------------------------------------------------------- constexpr (compressed weights)
# Evaluated once when the program is compiled (their inputs are all constants, stored as op
# attributes in iOS16/17 programs). Dequantisation is done in float64 and rounded once to the
# op's declared output dtype by the interpreter.

def _per_axis(v: Any, ndim: int, axis: int) -> np.ndarray:
    """A scalar or 1-D per-channel parameter, shaped to broadcast along ``axis`` of rank ``ndim``."""
    a = np.asarray(v)
    if a.ndim == 0:
        return a
    if a.ndim != 1:
        raise ValueError(f"per-channel parameter of rank {a.ndim} (expected a scalar or a vector)")
    shape = [1] * ndim
    shape[axis] = a.size
    return a.reshape(shape)


def constexpr_affine_dequantize(quantized_data, zero_point, scale, axis):
    """iOS16 ``constexpr_affine_dequantize``: ``scale * (quantized_data - zero_point)``, with
    ``scale``/``zero_point`` scalars or vectors along ``axis``."""
    q = np.asarray(quantized_data)
    if q.dtype not in (np.int8, np.uint8):
        raise UnsupportedOpError(f"constexpr_affine_dequantize of {q.dtype} data (int8/uint8 only)")
    ax = int(np.asarray(axis))
    if not -q.ndim <= ax < q.ndim:
        raise ValueError(f"axis {ax} out of range for quantized data of rank {q.ndim}")
    ax %= q.ndim
    zp = _per_axis(zero_point, q.ndim, ax).astype(np.float64)
    sc = _per_axis(to_float32(scale), q.ndim, ax).astype(np.float64)
    for name, v in (("zero_point", zp), ("scale", sc)):
        if v.ndim and v.shape[ax] != q.shape[ax]:
            raise ValueError(f"{name} has {v.shape[ax]} values for axis {ax} of size {q.shape[ax]}")
    return (q.astype(np.float64) - zp) * sc


def constexpr_blockwise_shift_scale(data, scale, offset=None):
    """iOS18 ``constexpr_blockwise_shift_scale``: ``scale * (data - offset)``, ``scale``/``offset``
    of the data's rank, each element covering a block of ``data.shape / scale.shape``."""
    q = np.asarray(data)
    if q.dtype not in (np.int8, np.uint8, np.float16, np.float32):
        raise UnsupportedOpError(f"constexpr_blockwise_shift_scale of {q.dtype} data")
    sc = np.asarray(to_float32(scale), np.float64)
    if sc.ndim != q.ndim or any(d % b for d, b in zip(q.shape, sc.shape)):
        raise ValueError(f"scale shape {sc.shape} does not tile data shape {q.shape}")

    def expand(v):
        for ax, (d, b) in enumerate(zip(q.shape, v.shape)):
            v = np.repeat(v, d // b, axis=ax)
        return v

    x = to_float32(q).astype(np.float64)
    if offset is not None:
        off = np.asarray(to_float32(offset), np.float64)
        if off.shape != sc.shape:
            raise ValueError(f"offset shape {off.shape} differs from scale shape {sc.shape}")
        x = x - expand(off)
    return x * expand(sc)


#: constexpr ops: run at compile time, their result is a constant of the program.
CONSTEXPR_OPS: Mapping[str, Callable[..., Any]] = MappingProxyType({
    "constexpr_affine_dequantize": constexpr_affine_dequantize,
    "constexpr_blockwise_shift_scale": constexpr_blockwise_shift_scale,
})


# --------------------------------------------------------------------------- dispatch table

OPS: Mapping[str, Callable[..., Any]] = MappingProxyType({
    "conv": conv, "linear": linear, "matmul": matmul, "batch_norm": batch_norm,
    "avg_pool": avg_pool, "max_pool": max_pool,
    "reduce_mean": _reduction(np.mean), "reduce_sum": _reduction(np.sum),
    "reduce_max": _reduction(np.max), "reduce_min": _reduction(np.min),
    "relu": _unary(lambda x: np.maximum(x, 0)), "relu6": _unary(lambda x: np.clip(x, 0, 6)),
    "sigmoid": _unary(_sigmoid), "tanh": _unary(np.tanh), "exp": _unary(np.exp),
    "sqrt": _unary(np.sqrt), "abs": _unary(np.abs), "square": _unary(np.square),
    "identity": _unary(lambda x: x),
    "clip": clip, "leaky_relu": leaky_relu, "softmax": softmax, "rsqrt": rsqrt, "log": log, "cast": cast,
    "add": _binary(np.add), "sub": _binary(np.subtract), "mul": _binary(np.multiply),
    "real_div": _binary(np.divide), "maximum": _binary(np.maximum),
    "minimum": _binary(np.minimum), "pow": _binary(np.power),
    "pad": pad, "reshape": reshape, "squeeze": squeeze, "expand_dims": expand_dims,
    "flatten2d": flatten2d, "transpose": transpose, "concat": concat, "stack": stack, "gather": gather,
    "slice_by_index": slice_by_index, "slice_by_size": slice_by_size, "classify": classify,
})
