import pytest

from moleport.evaluate.errors import EvaluationError
from moleport.evaluate.predictors import bundle_root
from moleport.predict import risk_band
from moleport.spec import ModelSpec


def test_risk_bands_match_the_apps_rule():
    t = 0.2
    assert risk_band(0.05, t) == "low"
    assert risk_band(0.1, t) == "borderline"  # t/2 <= p < t
    assert risk_band(0.2, t) == "high"  # p >= t is high, as in moleport.metrics
    assert risk_band(0.99, t) == "high"


def test_bundle_root_finds_spec_above_format_folder(tmp_path):
    bundle = tmp_path / "b"
    (bundle / "tflite").mkdir(parents=True)
    ModelSpec(architecture="mobilenet").save(bundle / "spec.json")
    art = bundle / "tflite" / "model_fp32.tflite"
    art.write_bytes(b"x")
    assert bundle_root(art) == bundle.resolve()
    with pytest.raises(EvaluationError, match="spec.json"):
        bundle_root(tmp_path / "elsewhere" / "deep" / "model.tflite")
