import json

import pytest

from moleport.spec import LABELS, ModelSpec, SpecError


def test_json_round_trip(tmp_path):
    spec = ModelSpec(architecture="mobilenet", threshold=0.3, export_input={"layout": "NHWC", "range": [0, 255]})
    back = ModelSpec.from_json(spec.to_json())
    assert back == spec and back.export_input == spec.export_input and back.labels == LABELS
    assert isinstance(back.mean, tuple)
    path = spec.save(tmp_path / "spec.json")
    assert ModelSpec.load(path).to_dict() == spec.to_dict()
    assert json.loads(path.read_text())["architecture"] == "mobilenet"


def test_unknown_field_and_missing_architecture():
    d = ModelSpec(architecture="vgg16").to_dict()
    with pytest.raises(SpecError, match=r"unknown ModelSpec field\(s\) \['colour'\]"):
        ModelSpec.from_dict({**d, "colour": "RGB"}, "x.json")
    d.pop("architecture")
    with pytest.raises(SpecError, match="missing 'architecture'"):
        ModelSpec.from_dict(d)


@pytest.mark.parametrize("kw,msg", [({"threshold": 1.5}, "threshold"), ({"threshold": -0.1}, "threshold"),
                                    ({"std": (0.2, 0.0, 0.2)}, "std"), ({"positive_class": "nv"}, "positive_class"),
                                    ({"input_size": 16}, "input_size"), ({"color_order": "RGBA"}, "color_order")])
def test_invalid_values(kw, msg):
    with pytest.raises(SpecError, match=msg):
        ModelSpec(architecture="mobilenet", **kw)


def test_bad_json_and_missing_file(tmp_path):
    with pytest.raises(SpecError, match="not valid JSON"):
        ModelSpec.from_json("{nope", "s.json")
    with pytest.raises(SpecError, match="must be an object"):
        ModelSpec.from_json("[1, 2]")
    with pytest.raises(SpecError, match="spec file not found"):
        ModelSpec.load(tmp_path / "none.json")
    with pytest.raises(SpecError, match="threshold"):
        ModelSpec.from_json(json.dumps({"architecture": "m", "threshold": 2}))


def test_colour_constancy_and_temperature_round_trip_and_validate(tmp_path):
    s = ModelSpec("mobilenet", color_constancy="shades-of-gray-p6", temperature=1.7, threshold=0.2)
    assert ModelSpec.load(s.save(tmp_path / "s.json")) == s
    old = ModelSpec("mobilenet").to_dict()
    del old["color_constancy"], old["temperature"]  # a spec written before the fields existed still loads
    loaded = ModelSpec.from_dict(old)
    assert loaded.color_constancy is None and loaded.temperature == 1.0
    with pytest.raises(SpecError, match="color_constancy"):
        ModelSpec("mobilenet", color_constancy="grey-world")
    for bad in (0.0, -1.0, 1e6, "2"):
        with pytest.raises(SpecError, match="temperature"):
            ModelSpec("mobilenet", temperature=bad)


def test_tta_round_trips_validates_and_an_older_spec_has_none(tmp_path):
    s = ModelSpec("mobilenet", tta="dihedral8", threshold=0.06)
    assert ModelSpec.load(s.save(tmp_path / "s.json")) == s
    old = ModelSpec("mobilenet").to_dict()
    del old["tta"]  # a spec.json written before the field existed still loads, without test-time augmentation
    assert ModelSpec.from_dict(old).tta is None
    with pytest.raises(SpecError, match="tta must be None or one of"):
        ModelSpec("mobilenet", tta="rot3")


def test_the_apps_accept_exactly_the_in_graph_tta_rules():
    """android_demo and web_demo refuse a spec.json whose tta the exporter does not implement: same list as TTA_RULES."""
    import re
    from pathlib import Path

    from moleport.spec import TTA_RULES

    root = Path(__file__).resolve().parents[1]
    java = (root / "android_demo/core/src/main/java/org/moleport/core/ModelSpec.java").read_text(encoding="utf-8")
    js = (root / "web_demo/src/preprocess.js").read_text(encoding="utf-8")
    in_java = re.search(r"IN_GRAPH_TTA = [^;]*?asList\(([^)]*)\)", java, re.S).group(1)
    in_js = re.search(r"IN_GRAPH_TTA = \[([^\]]*)\]", js).group(1)
    assert re.findall(r'"([^"]+)"', in_java) == list(TTA_RULES)
    assert re.findall(r"'([^']+)'", in_js) == list(TTA_RULES)
