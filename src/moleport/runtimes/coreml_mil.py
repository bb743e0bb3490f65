"""Reference interpreter for Core ML ML Program (``.mlpackage``) classifiers, in numpy.

Core ML cannot run on Linux, so parity against the exported ``.mlpackage`` is judged by
executing the program itself: the ``Model`` protobuf is parsed with coremltools' generated
``Model_pb2`` (no Core ML runtime), the ``main`` function's block for its opset is compiled
into a list of steps (each MIL op mapped to a numpy kernel in :mod:`.coreml_ops`), and weights
are read from ``weights/weight.bin`` with coremltools' ``libmilstoragepython`` blob reader.

What Core ML does around the program, reproduced here:

- image input: Core ML turns the RGB (or BGR) pixel buffer into the program's input tensor,
  1 x 3 x H x W, pixel values 0..255 as floats. An ``ImageType`` ``scale``/``bias`` is *not*
  stored in the model description for ML Programs: coremltools inserts it as ``mul``/``add``
  ops at the start of the program (``<input>__scaled__``, ``<input>__biased__``), so running
  the program applies it exactly;
- classifier: the program ends in a ``classify`` op whose ``probabilities`` input is the
  tensor Core ML turns into the label -> probability dictionary; :meth:`predict_proba`
  returns that tensor's rows, columns in the ``classes`` (label) order.

Precision: each op's result is rounded to the op's declared output dtype, so an fp16 program
(``cast`` to fp16 after the input) runs with float16 tensors between ops while each kernel
accumulates in float32 (see :mod:`.coreml_ops`) -- an approximation of Apple's fp16 engines,
not a bit-exact model of them. Mixed programs (fp32 ops, ``cast``, fp16 ops, ``cast`` back)
run the same way, op by op.

Compressed weights: ``constexpr_affine_dequantize`` (iOS16/17 int8/uint8 weights) and
``constexpr_blockwise_shift_scale`` (iOS18) are evaluated once at load time, from their
attributes or const inputs (int8/uint8 blobs read from the weights file), into float constants
of their declared dtype; other constexpr ops (palettised / sparse weights) are refused by name.

This module deliberately does not import ``moleport.export``: the harness must not reuse the
code it judges.
"""
from __future__ import annotations

import contextlib
import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from moleport.runtimes.coreml_ops import (CONSTEXPR_OPS, OPS, UnsupportedOpError,
                                                  round_to, to_float32)

IMPLEMENTATION = "numpy-mlprogram-reference"
POSITIVE_LABEL = "melanoma"
DEFAULT_MODEL_FILE = Path("Data/com.apple.CoreML/model.mlmodel")
MODEL_PATH_PREFIX = "@model_path/"

# MIL DataType names -> numpy dtypes (STRING and sub-byte types have no numpy counterpart here).
NUMPY_DTYPES = {
    "BOOL": np.bool_, "FLOAT16": np.float16, "FLOAT32": np.float32, "FLOAT64": np.float64,
    "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
    "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
}
# MIL DataType name -> (_BlobStorageReader method, dtype to view its result as).
BLOB_READERS = {
    "FLOAT16": ("read_fp16_data", np.float16), "FLOAT32": ("read_float_data", np.float32),
    "INT8": ("read_int8_data", np.int8), "UINT8": ("read_uint8_data", np.uint8),
    "INT16": ("read_int16_data", np.int16), "UINT16": ("read_uint16_data", np.uint16),
    "INT32": ("read_int32_data", np.int32), "UINT32": ("read_uint32_data", np.uint32),
}


class CoreMLPackageError(ValueError):
    """The ``.mlpackage`` is missing, malformed, truncated or not an ML Program classifier."""


class MILExecutionError(RuntimeError):
    """An op failed while the program ran (names the op and the value it was producing)."""


# --------------------------------------------------------------------------- package / spec

def _model_file(package: Path) -> Path:
    """The root ``model.mlmodel`` of a package, via ``Manifest.json`` when it names one."""
    if not package.is_dir():
        raise CoreMLPackageError(f"{package}: not an .mlpackage directory")
    manifest = package / "Manifest.json"
    rel = DEFAULT_MODEL_FILE
    if manifest.is_file():
        try:
            info = json.loads(manifest.read_text())
            root = info["itemInfoEntries"][info["rootModelIdentifier"]]
            rel = Path("Data") / root["path"]
        except (ValueError, KeyError, TypeError) as e:
            raise CoreMLPackageError(f"{manifest}: unreadable package manifest ({e!r})") from e
    path = package / rel
    if not path.is_file():
        raise CoreMLPackageError(f"{path}: model specification file is missing")
    return path


def _load_spec(path: Path) -> Any:
    from google.protobuf.message import DecodeError
    from coremltools.proto import Model_pb2

    spec = Model_pb2.Model()
    try:
        spec.ParseFromString(path.read_bytes())
    except DecodeError as e:
        raise CoreMLPackageError(f"{path}: not a valid Core ML model protobuf ({e})") from e
    kind = spec.WhichOneof("Type")
    if kind != "mlProgram":
        raise CoreMLPackageError(f"{path}: model type is {kind!r}, expected an ML Program "
                                 "(truncated file, or a neuralNetwork-format model)")
    return spec


def _main_block(spec: Any, path: Path) -> tuple[Any, Any]:
    functions = spec.mlProgram.functions
    if "main" not in functions:
        raise CoreMLPackageError(f"{path}: ML Program has no 'main' function "
                                 f"(has {sorted(functions)})")
    fn = functions["main"]
    if fn.opset not in fn.block_specializations:
        raise CoreMLPackageError(f"{path}: 'main' has no block for its opset {fn.opset!r}")
    return fn, fn.block_specializations[fn.opset]


# --------------------------------------------------------------------------- values

class _Blobs:
    """``blobFileValue`` reader: one coremltools ``_BlobStorageReader`` per weights file."""

    def __init__(self, model_dir: Path):
        self.model_dir = model_dir
        self._readers: dict[Path, Any] = {}

    def _reader(self, file_name: str) -> tuple[Path, Any]:
        if not file_name.startswith(MODEL_PATH_PREFIX):
            raise CoreMLPackageError(f"blob file {file_name!r} is not under @model_path")
        path = self.model_dir / file_name[len(MODEL_PATH_PREFIX):]
        if path not in self._readers:
            if not path.is_file():
                raise CoreMLPackageError(f"{path}: weights file is missing")
            from coremltools.libmilstoragepython import _BlobStorageReader
            self._readers[path] = _BlobStorageReader(str(path))
        return path, self._readers[path]

    def read(self, blob: Any, dtype_name: str, shape: tuple[int, ...], where: str) -> np.ndarray:
        path, reader = self._reader(blob.fileName)
        if dtype_name not in BLOB_READERS:
            raise UnsupportedOpError(f"{where}: weights of dtype {dtype_name} in {path}")
        method, view = BLOB_READERS[dtype_name]
        try:
            data = np.asarray(getattr(reader, method)(int(blob.offset))).view(view)
        except (RuntimeError, ValueError, IndexError) as e:
            raise CoreMLPackageError(f"{path}: cannot read {dtype_name} weights at offset "
                                     f"{blob.offset} for {where} ({e}); truncated or corrupt "
                                     "weights file?") from e
        if data.size != int(np.prod(shape)):
            raise CoreMLPackageError(f"{path}: blob at offset {blob.offset} holds {data.size} "
                                     f"values, {where} declares shape {shape}")
        return data.reshape(shape).copy()


def _tensor_type(value_type: Any) -> tuple[str, tuple[int, ...] | None]:
    """(DataType name, static shape or None) of a tensor ValueType."""
    from coremltools.proto import MIL_pb2

    tt = value_type.tensorType
    dims = [d.constant.size if d.WhichOneof("dimension") == "constant" else None
            for d in tt.dimensions]
    shape = None if None in dims else tuple(int(d) for d in dims)
    return MIL_pb2.DataType.Name(tt.dataType), shape


def _immediate_tensor(tv: Any, dtype_name: str, shape: tuple[int, ...] | None, where: str):
    kind = tv.WhichOneof("value")
    if kind == "strings":
        values = list(tv.strings.values)
        return values[0] if shape == () and len(values) == 1 else values
    if dtype_name not in NUMPY_DTYPES:
        raise UnsupportedOpError(f"{where}: immediate tensor of dtype {dtype_name}")
    dtype = NUMPY_DTYPES[dtype_name]
    if kind == "bytes":
        arr = np.frombuffer(tv.bytes.values, dtype=dtype)
    elif kind is None:
        arr = np.zeros(0, dtype)
    else:
        arr = np.array(list(getattr(tv, kind).values)).astype(dtype)
    return arr.reshape(shape if shape is not None else arr.shape).copy()


def _decode_value(value: Any, blobs: _Blobs, where: str) -> Any:
    """A MIL ``Value``: numpy array (tensor), str (scalar string) or list (list/tuple)."""
    kind = value.WhichOneof("value")
    type_kind = value.type.WhichOneof("type")
    if kind == "immediateValue":
        imm = value.immediateValue
        which = imm.WhichOneof("value")
        if which == "tensor" and type_kind == "tensorType":
            return _immediate_tensor(imm.tensor, *_tensor_type(value.type), where)
        if which in ("list", "tuple"):
            return [_decode_value(v, blobs, where) for v in getattr(imm, which).values]
        raise UnsupportedOpError(f"{where}: immediate value of kind {which!r}")
    if kind == "blobFileValue" and type_kind == "tensorType":
        dtype_name, shape = _tensor_type(value.type)
        if shape is None:
            raise CoreMLPackageError(f"{where}: weights with a non-static shape")
        return blobs.read(value.blobFileValue, dtype_name, shape, where)
    raise CoreMLPackageError(f"{where}: value has no data (kind {kind!r}, type {type_kind!r})")


# --------------------------------------------------------------------------- compile / run

@dataclass(frozen=True)
class _Step:
    op_type: str
    fn: Callable[..., Any]
    # input name -> (is_variadic, tuple of ("var", name) | ("const", value))
    inputs: dict[str, tuple[bool, tuple[tuple[str, Any], ...]]]
    outputs: tuple[tuple[str, Any], ...]  # (name, numpy dtype to round to, or None)

    @property
    def where(self) -> str:
        return f"op {self.op_type!r} producing {self.outputs[0][0]!r}"


def _output_dtype(value_type: Any) -> Any:
    if value_type.WhichOneof("type") != "tensorType":
        return None  # e.g. classify's dictionary output: left as the kernel returns it
    return NUMPY_DTYPES.get(_tensor_type(value_type)[0])


def _operand(value: Any) -> Any:
    """A const operand as kernels will use it: fp16 promoted to fp32 once, here (exact, and
    each kernel would do it anyway; every result is rounded to its declared dtype)."""
    return to_float32(value) if isinstance(value, np.ndarray) else value


def _bindings(argument: Any, consts: dict[str, Any], known: set[str], blobs: _Blobs,
              where: str) -> tuple[tuple[str, Any], ...]:
    out = []
    for b in argument.arguments:
        if b.WhichOneof("binding") == "value":
            out.append(("const", _operand(_decode_value(b.value, blobs, where))))
        elif b.name in consts:
            out.append(("const", _operand(consts[b.name])))
        elif b.name in known:
            out.append(("var", b.name))
        else:
            raise CoreMLPackageError(f"{blobs.model_dir}: {where}: input refers to undefined "
                                     f"value {b.name!r} (malformed program)")
    return tuple(out)


def _make_step(op: Any, consts: dict[str, Any], known: set[str], blobs: _Blobs) -> _Step:
    outputs = tuple((o.name, _output_dtype(o.type)) for o in op.outputs)
    first = outputs[0][0] if outputs else "?"
    where = f"op {op.type!r} producing {first!r}"
    fn = OPS.get(op.type)
    if fn is None:
        raise UnsupportedOpError(f"unsupported MIL op {op.type!r} (producing {first!r}); "
                                 f"the numpy reference implements: {', '.join(sorted(OPS))}")
    if len(op.blocks):
        raise UnsupportedOpError(f"{where}: ops with nested blocks (control flow)")
    try:
        inspect.signature(fn).bind(**{k: None for k in op.inputs})
    except TypeError as e:
        raise UnsupportedOpError(f"{where}: inputs {sorted(op.inputs)} not supported "
                                 f"({e})") from None
    inputs = {k: (k == "values" or len(arg.arguments) != 1,
                  _bindings(arg, consts, known, blobs, where)) for k, arg in op.inputs.items()}
    return _Step(op.type, fn, inputs, outputs)


def _constexpr(op: Any, consts: dict[str, Any], blobs: _Blobs) -> Any:
    """Evaluate a ``constexpr_*`` op (compressed weights) now: its parameters are op attributes
    (iOS16/17) or const inputs (iOS18); the result is rounded to its declared dtype."""
    if len(op.outputs) != 1:
        raise UnsupportedOpError(f"op {op.type!r}: constexpr ops with {len(op.outputs)} outputs")
    name = op.outputs[0].name
    where = f"op {op.type!r} producing {name!r}"
    fn = CONSTEXPR_OPS.get(op.type)
    if fn is None:
        raise UnsupportedOpError(f"unsupported MIL op {op.type!r} (producing {name!r}); the numpy "
                                 f"reference implements the constexpr ops {', '.join(sorted(CONSTEXPR_OPS))}")
    args = {k: _decode_value(v, blobs, f"{where}, {k!r}")
            for k, v in op.attributes.items() if k != "name"}
    for k, arg in op.inputs.items():
        (binding,) = arg.arguments
        if binding.WhichOneof("binding") == "value":
            args[k] = _decode_value(binding.value, blobs, f"{where}, {k!r}")
        elif binding.name in consts:
            args[k] = consts[binding.name]
        else:
            raise CoreMLPackageError(f"{blobs.model_dir}: {where}: input {k!r} refers to "
                                     f"{binding.name!r}, which is not a constant")
    try:
        inspect.signature(fn).bind(**args)
    except TypeError as e:
        raise UnsupportedOpError(f"{where}: parameters {sorted(args)} not supported ({e})") from None
    try:
        value = fn(**args)
    except UnsupportedOpError as e:
        raise UnsupportedOpError(f"{where}: {e}") from e
    except (ValueError, TypeError, IndexError) as e:
        raise MILExecutionError(f"{where} failed: {e}") from e
    dtype = _output_dtype(op.outputs[0].type)
    _, shape = _tensor_type(op.outputs[0].type)
    if shape is not None and tuple(np.shape(value)) != shape:
        raise MILExecutionError(f"{where} produced shape {np.shape(value)}, declared {shape}")
    return value if dtype is None else round_to(value, dtype)


def _compile(block: Any, input_names: set[str], blobs: _Blobs) -> list[_Step]:
    """Steps for the block's non-const ops; const and constexpr ops (and blob weights) are
    evaluated now."""
    consts: dict[str, Any] = {}
    known = set(input_names)
    steps = []
    for op in block.operations:
        if op.type == "const":
            name = op.outputs[0].name
            if "val" not in op.attributes:
                raise CoreMLPackageError(f"{blobs.model_dir}: const {name!r} has no 'val'")
            consts[name] = _decode_value(op.attributes["val"], blobs, f"const {name!r}")
            continue
        if op.type.startswith("constexpr_"):
            consts[op.outputs[0].name] = _constexpr(op, consts, blobs)
            continue
        steps.append(_make_step(op, consts, known, blobs))
        known.update(o.name for o in op.outputs)
    return steps


def _execute(steps: list[_Step], env: dict[str, Any]) -> dict[str, Any]:
    for step in steps:
        args = {}
        for key, (variadic, bound) in step.inputs.items():
            vals = [env[v] if kind == "var" else v for kind, v in bound]
            args[key] = vals if variadic else vals[0]
        try:
            result = step.fn(**args)
        except UnsupportedOpError as e:
            raise UnsupportedOpError(f"{step.where}: {e}") from e
        except (ValueError, TypeError, IndexError) as e:
            raise MILExecutionError(f"{step.where} failed: {e}") from e
        results = result if len(step.outputs) > 1 else (result,)
        for (name, dtype), value in zip(step.outputs, results):
            env[name] = value if dtype is None else round_to(value, dtype)
    return env


# --------------------------------------------------------------------------- runner

@dataclass(frozen=True)
class _ImageInput:
    name: str            # program input name
    dtype: Any           # program input dtype
    height: int
    width: int
    layout: str          # "NCHW" (image / NCHW multiarray) or "NHWC"
    bgr: bool


def _image_input(spec: Any, fn: Any, path: Path) -> _ImageInput:
    if len(fn.inputs) != 1:
        raise CoreMLPackageError(f"{path}: expected one program input, got {len(fn.inputs)}")
    prog_in = fn.inputs[0]
    dtype_name, shape = _tensor_type(prog_in.type)
    if shape is None or len(shape) != 4 or shape[0] != 1:
        raise CoreMLPackageError(f"{path}: input {prog_in.name!r} has shape {shape}, "
                                 "expected a static 1 x 3 x H x W (or 1 x H x W x 3)")
    desc = {f.name: f for f in spec.description.input}.get(prog_in.name)
    kind = desc.type.WhichOneof("Type") if desc is not None else None
    if kind == "imageType":
        from coremltools.proto import Model_pb2

        color = Model_pb2.ImageFeatureType.ColorSpace.Name(desc.type.imageType.colorSpace)
        if color not in ("RGB", "BGR"):
            raise UnsupportedOpError(f"{path}: image input color space {color}")
        return _ImageInput(prog_in.name, NUMPY_DTYPES[dtype_name], shape[2], shape[3],
                           "NCHW", color == "BGR")
    layout = "NCHW" if shape[1] == 3 else "NHWC"
    h, w = (shape[2], shape[3]) if layout == "NCHW" else (shape[1], shape[2])
    return _ImageInput(prog_in.name, NUMPY_DTYPES[dtype_name], h, w, layout, False)


def _classifier(steps: list[_Step], path: Path) -> tuple[str, tuple[str, ...]]:
    """(name of the probability tensor feeding ``classify``, its class labels in order)."""
    for step in steps:
        if step.op_type == "classify":
            (kind, probs), = step.inputs["probabilities"][1]
            (_, classes), = step.inputs["classes"][1]
            if kind != "var":
                raise CoreMLPackageError(f"{path}: classify reads a constant probability tensor")
            return probs, tuple(str(c) for c in np.ravel(np.asarray(classes, dtype=object)))
    raise CoreMLPackageError(f"{path}: the program has no 'classify' op; not a classifier "
                             "(convert with ct.ClassifierConfig)")


def _blas_threads(n: int | None) -> Any:
    """Context limiting BLAS threads to ``n`` (threadpoolctl; a no-op if absent or n is None)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        n = None
    return contextlib.nullcontext() if n is None else threadpool_limits(n, user_api="blas")


class CoreMLReferenceRunner:
    """Runs a Core ML ML Program image classifier in numpy.

    ``predict_proba(x)`` takes N x H x W x 3 RGB pixels (uint8, or floats 0..255) and returns
    N x len(labels) float64 probabilities in label order; ``predict(x)`` returns P(melanoma).
    """

    implementation = IMPLEMENTATION

    def __init__(self, mlpackage_path: str | Path, blas_threads: int | None = 1):
        self.path = Path(mlpackage_path)
        # BLAS threads while predicting (None: leave the process setting). One thread is the
        # fast choice for these small sgemms; OpenBLAS threads on a loaded machine are ~100x
        # slower here.
        self.blas_threads = blas_threads
        model_file = _model_file(self.path)
        spec = _load_spec(model_file)
        fn, block = _main_block(spec, model_file)
        self.opset: str = fn.opset
        self._input = _image_input(spec, fn, model_file)
        self._steps = _compile(block, {self._input.name}, _Blobs(model_file.parent))
        self._probs_name, self.labels = _classifier(self._steps, model_file)
        # Compute precision: "fp16" when any op computes in float16 (a mixed program, fp32
        # pre-processing and head around an fp16 backbone, counts as fp16), else "fp32".
        self.precision = "fp16" if any(
            dtype is np.float16 for s in self._steps for _, dtype in s.outputs) else "fp32"
        #: constexpr ops that decompress weights at load time (e.g. int8 weights:
        #: ``("constexpr_affine_dequantize",)``); empty for plain fp32/fp16 weights.
        self.weight_compression: tuple[str, ...] = tuple(sorted(
            {op.type for op in block.operations if op.type.startswith("constexpr_")}))

    @property
    def op_types(self) -> tuple[str, ...]:
        """The non-const op types the program executes, in program order (with repeats)."""
        return tuple(s.op_type for s in self._steps)

    def _to_input(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim == 3:
            x = x[None]
        want = (self._input.height, self._input.width, 3)
        if x.ndim != 4 or x.shape[1:] != want:
            raise ValueError(f"expected N x {want[0]} x {want[1]} x 3 RGB pixels, got {x.shape}")
        if self._input.bgr:
            x = x[..., ::-1]
        if self._input.layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        # Core ML hands the program the pixel values themselves (0..255) as floats.
        return np.ascontiguousarray(x.astype(np.float32).astype(self._input.dtype))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """N x len(labels) probabilities, as Core ML's classifier dictionary would hold them."""
        batch = self._to_input(x)
        with _blas_threads(self.blas_threads):
            return np.stack([self._run_one(image[None]) for image in batch])

    def _run_one(self, image: np.ndarray) -> np.ndarray:
        """One 1 x ... input (the program's shapes are static with batch 1) -> probabilities."""
        env = _execute(self._steps, {self._input.name: image})
        probs = np.asarray(env[self._probs_name], dtype=np.float64).reshape(-1)
        if probs.size != len(self.labels):
            raise MILExecutionError(f"{self._probs_name!r} has {probs.size} values for "
                                    f"{len(self.labels)} labels")
        return probs

    def predict(self, x: np.ndarray) -> np.ndarray:
        """P(melanoma) per image, shape [N]."""
        if POSITIVE_LABEL not in self.labels:
            raise ValueError(f"labels {self.labels} have no {POSITIVE_LABEL!r}")
        return self.predict_proba(x)[:, self.labels.index(POSITIVE_LABEL)]
