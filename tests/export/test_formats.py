"""Every artifact of a full bundle, loaded back with its own library and compared with PyTorch.

One session-scoped export (see conftest ``bundle``) feeds all tests; it converts 8 variants and
takes several minutes on 2 CPU cores, hence ``heavy``.
"""
import json
import zipfile

import numpy as np
import pytest
import torch

from moleport.export.wrapper import reference_probabilities
from moleport.jsonio import sha256_file, size_bytes

pytestmark = pytest.mark.heavy
FP32_TOL = 1e-4


@pytest.fixture(scope="module")
def reference(source):
    return reference_probabilities(source["model"], source["spec"], source["test_x"]).numpy()


def _files(bundle, fmt):
    return {f["precision"]: f for f in bundle.manifest["files"] if f["format"] == fmt}


def test_every_variant_exported_and_hashed(bundle):
    assert bundle.ok, bundle.failures
    got = {(f["format"], f["precision"]) for f in bundle.manifest["files"]}
    assert got == {("onnx", "fp32"), ("tflite", "fp32"), ("tflite", "fp16"), ("tflite", "int8"),
                   ("coreml", "fp32"), ("coreml", "fp16"), ("coreml", "w8"), ("executorch", "fp32"),
                   ("executorch", "int8")}
    on_disk = json.loads((bundle.out_dir / "manifest.json").read_text())
    for f in on_disk["files"]:
        artifact = bundle.out_dir / f["path"]
        assert (f["sha256"], f["bytes"]) == (sha256_file(artifact), size_bytes(artifact))
        assert f["converter"] and f["seconds"] > 0 and f["input"] and f["output"]
        assert f["precision_map"]["preprocess"] == "fp32" and f["precision_map"]["head"] == "fp32"
    assert on_disk["split_manifest_sha256"] and on_disk["tools"]["onnx2tf"] == "1.29.24"


def _run_tflite(path, images):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    assert list(inp["shape"]) == [1, 224, 224, 3] and list(out["shape"]) == [1, 2]
    rows = []
    for img in images:
        x = img[None].astype(np.float32)
        if inp["dtype"] == np.int8:
            scale, zero = inp["quantization"]
            x = np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)
        it.set_tensor(inp["index"], x)
        it.invoke()
        y = it.get_tensor(out["index"]).astype(np.float32)
        if out["dtype"] == np.int8:
            scale, zero = out["quantization"]
            y = (y - zero) * scale
        rows.append(y[0])
    return np.array(rows)


@pytest.mark.parametrize("precision,tol", [("fp32", FP32_TOL), ("fp16", 0.08), ("int8", 0.35)])
def test_tflite_matches_pytorch(bundle, source, reference, precision, tol):
    entry = _files(bundle, "tflite")[precision]
    got = _run_tflite(bundle.out_dir / entry["path"], source["test_x"])
    assert np.allclose(got.sum(1), 1.0, atol=0.02)
    assert np.abs(got - reference).max() <= tol
    if precision == "int8":  # int8 backbone only: float32 input and output, fp32 pre/post-processing
        assert entry["input"]["dtype"] == "float32" and entry["input"]["quantization"] is None
        assert entry["output"]["dtype"] == "float32"
        assert (got.argmax(1) == reference.argmax(1)).mean() >= 0.5


def test_int8_tflite_has_int8_kernels_for_the_backbone_only(bundle):
    """Every conv runs as an int8 TFLite kernel (the default scope: no fp32 leading blocks); the classifier Linear,
    whose output is the logit, and the pre-processing ops stay float."""
    from ai_edge_litert.interpreter import Interpreter

    files = _files(bundle, "tflite")
    it = Interpreter(model_path=str(bundle.out_dir / files["int8"]["path"]),
                     experimental_op_resolver_type=__import__("ai_edge_litert.interpreter", fromlist=["x"]).OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    details = {t["index"]: t for t in it.get_tensor_details()}
    convs = [op for op in it._get_ops_details() if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")]
    assert len(convs) == 28  # MobileNetV1: 27 convs + the logit
    for op in convs:
        weight = details[op["inputs"][1]]
        want = np.float32 if op["op_name"] == "FULLY_CONNECTED" else np.int8
        assert weight["dtype"] == want, (op["op_name"], weight["name"], weight["dtype"])
    floats = [op for op in it._get_ops_details() if op["op_name"] in ("EXP", "LOG", "SQRT", "LOGISTIC")]
    assert floats and all(details[op["outputs"][0]]["dtype"] == np.float32 for op in floats)
    assert files["int8"]["bytes"] <= files["fp32"]["bytes"] / 3.5


def test_tflite_metadata_for_mediapipe(bundle):
    from moleport.export import mediapipe_shim

    mediapipe_shim.install()
    from mediapipe.tasks.python.metadata.metadata import MetadataDisplayer

    path = bundle.out_dir / _files(bundle, "tflite")["fp32"]["path"]
    shown = MetadataDisplayer.with_model_file(str(path))
    md = json.loads(shown.get_metadata_json())
    assert md["name"] == "full" and md["author"] and md["license"] == "Apache-2.0" and md["version"]
    norm = md["subgraph_metadata"][0]["input_tensor_metadata"][0]["process_units"][0]["options"]
    assert norm["mean"] == [0.0] and norm["std"] == [1.0]
    assert shown.get_packed_associated_file_list() == ["labels.txt"]
    assert shown.get_associated_file_buffer("labels.txt").decode().split() == ["nevus", "melanoma"]
    assert zipfile.is_zipfile(path)  # associated files are appended as a zip


def test_coreml_package_spec(bundle, source):
    import coremltools as ct

    for precision, entry in _files(bundle, "coreml").items():
        m = ct.models.MLModel(str(bundle.out_dir / entry["path"]), skip_model_load=True)
        desc = m.get_spec().description
        img = desc.input[0].type.imageType
        assert desc.input[0].name == "pixels" and (img.width, img.height) == (224, 224)
        assert ct.proto.FeatureTypes_pb2.ImageFeatureType.ColorSpace.Name(img.colorSpace) == "RGB"
        assert entry["output"]["labels"] == ["nevus", "melanoma"]
        user = m.user_defined_metadata
        assert json.loads(user["moleport.spec"])["architecture"] == "mobilenet"
        assert float(user["moleport.threshold"]) == pytest.approx(0.42)
        assert user["moleport.checkpoint_sha256"] == bundle.manifest["source_checkpoint_sha256"]
        assert "test" in json.loads(user["moleport.metrics"]) and m.author and m.license


def test_executorch_int8_program_quantizes_every_backbone_layer(bundle):
    from executorch.runtime import Runtime

    files = _files(bundle, "executorch")
    assert files["int8"]["bytes"] <= files["fp32"]["bytes"] / 3.5  # int8 weights, not a float program
    program = Runtime.get().load_program(str(bundle.out_dir / files["int8"]["path"]))
    assert "forward" in program.method_names


@pytest.mark.parametrize("precision,tol", [("fp32", FP32_TOL), ("int8", 0.35)])
def test_executorch_runs_and_matches(bundle, source, reference, precision, tol):
    from executorch.runtime import Runtime

    program = Runtime.get().load_program(str(bundle.out_dir / _files(bundle, "executorch")[precision]["path"]))
    forward = program.load_method("forward")
    got = np.concatenate([forward.execute([torch.as_tensor(img[None], dtype=torch.float32)])[0].numpy()
                          for img in source["test_x"]])
    assert got.shape == (len(source["test_x"]), 2) and np.abs(got - reference).max() <= tol
    assert list(program.load_method("get_labels").execute([])) == ["nevus", "melanoma"]
    assert program.load_method("get_threshold").execute([])[0] == pytest.approx(0.42)
    contract = json.loads(program.load_method("get_input_contract").execute([])[0])
    assert contract["shape"]["NHWC"] == [1, 224, 224, 3] and contract["range"] == [0.0, 255.0]


def test_onnx_runs_and_matches(bundle, source, reference):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(bundle.out_dir / _files(bundle, "onnx")["fp32"]["path"]))
    got = np.concatenate([sess.run(None, {"pixels": img[None].astype(np.float32)})[0] for img in source["test_x"]])
    assert np.abs(got - reference).max() <= FP32_TOL
    assert reference[:, 1].std() > 0.05  # the fitted model really distinguishes the inputs
