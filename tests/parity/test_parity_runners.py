"""Runner I/O conventions on tiny TFLite models with a known answer (no exporter involved).

toy(x) = [1 - p, p] with p = sigmoid((mean R - mean B) / 20) over the 0..255 pixels.
"""
from __future__ import annotations

import numpy as np
import pytest

from moleport.jsonio import sha256_file
from moleport.runtimes.bundle import ArtifactFile
from moleport.runtimes import RunnerError, RunnerSkipped
from moleport.runtimes.litert import LiteRTRunner, dequantize, quantize
from moleport.spec import ModelSpec

SPEC = ModelSpec(architecture="mobilenet")


def _toy_p(x: np.ndarray) -> np.ndarray:
    m = x.reshape(len(x), -1, 3).astype(np.float64).mean(1)
    return 1.0 / (1.0 + np.exp(-(m[:, 0] - m[:, 2]) / 20.0))


@pytest.fixture(scope="module")
def toy_tflite(tmp_path_factory):
    import tensorflow as tf

    class Toy(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 224, 224, 3], tf.float32)])
        def __call__(self, x):
            m = tf.reduce_mean(x, axis=[1, 2])
            p = tf.sigmoid((m[:, 0:1] - m[:, 2:3]) / 20.0)
            return tf.concat([1.0 - p, p], axis=1)

    toy, out = Toy(), tmp_path_factory.mktemp("toy")
    fn = toy.__call__.get_concrete_function()
    (out / "toy_fp32.tflite").write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([fn], toy).convert())

    def rep():  # calibration images like the test images (varied colour casts)
        for i in range(24):
            yield [_images(1, seed=100 + i).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn], toy)
    conv.optimizations, conv.representative_dataset = [tf.lite.Optimize.DEFAULT], rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    (out / "toy_int8.tflite").write_bytes(conv.convert())
    return out


def _art(path, precision):
    return ArtifactFile(path=path, rel=path.name, format="tflite", precision=precision, sha256=sha256_file(path))


def _images(n=6, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n, 1, 1, 3))
    return np.clip(base + rng.integers(-40, 40, (n, 224, 224, 3)), 0, 255).astype(np.uint8)


def test_quantize_round_trip_uses_tensor_parameters():
    detail = {"name": "x", "dtype": np.int8, "quantization": (0.5, -10)}
    q = quantize(np.array([0.0, 1.0, 200.0]), detail)
    assert q.dtype == np.int8 and q.tolist() == [-10, -8, 127]  # clipped to the int8 range
    assert dequantize(q, detail).tolist() == [0.0, 1.0, 68.5]
    with pytest.raises(RunnerError, match="without quantisation"):
        quantize(np.zeros(1), {"name": "x", "dtype": np.int8, "quantization": (0.0, 0)})


def test_litert_fp32_matches_the_known_answer_with_xnnpack(toy_tflite):
    runner = LiteRTRunner(_art(toy_tflite / "toy_fp32.tflite", "fp32"), SPEC, threads=1)
    x = _images()
    p = runner.predict(x)
    np.testing.assert_allclose(p, _toy_p(x), atol=1e-5)
    info = runner.info()
    assert info["delegate"] == "XNNPACK" and info["threads"] == 1 and info["input_dtype"] == "float32"
    assert runner.latency_ms(x[0], runs=2) > 0


def test_litert_int8_quantises_input_and_dequantises_output(toy_tflite):
    runner = LiteRTRunner(_art(toy_tflite / "toy_int8.tflite", "int8"), SPEC)
    x = _images(seed=1)
    p = runner.predict(x)
    assert runner.info()["input_dtype"] == "int8"
    np.testing.assert_allclose(p, _toy_p(x), atol=0.03)
    assert np.ptp(p) > 0.1  # really input-dependent, not a constant


def test_mediapipe_refuses_tflite_without_metadata(toy_tflite):
    from moleport.runtimes.mediapipe import MediaPipeRunner

    with pytest.raises(RunnerError, match="toy_fp32.tflite@mediapipe: cannot load.*[Mm]etadata"):
        MediaPipeRunner(_art(toy_tflite / "toy_fp32.tflite", "fp32"), SPEC).predict(_images(1))
    with pytest.raises(RunnerSkipped, match="int8"):
        MediaPipeRunner(_art(toy_tflite / "toy_int8.tflite", "int8"), SPEC).predict(_images(1))
