"""The shared JSON-object reader: one clear error naming the file, in the caller's error type."""
import pytest

from moleport.jsonio import read_json_object


class MyError(ValueError):
    pass


def test_every_bad_file_is_a_clear_error_of_the_callers_type(tmp_path):
    good = tmp_path / "good.json"
    good.write_text('{"files": [1]}')
    assert read_json_object(good, MyError, list_key="files") == {"files": [1]}
    cases = {"missing.json": None, "broken.json": "{not json", "list.json": "[1, 2]", "nofiles.json": '{"x": 1}',
             "binary.json": b"\xff\xfe\x00"}
    expected = {"missing.json": "not found", "broken.json": "not valid JSON", "list.json": "must be a JSON object",
                "nofiles.json": "'files' list", "binary.json": "not valid JSON"}
    for name, content in cases.items():
        p = tmp_path / name
        if isinstance(content, bytes):
            p.write_bytes(content)
        elif content is not None:
            p.write_text(content)
        with pytest.raises(MyError, match=expected[name]) as info:
            read_json_object(p, MyError, "bundle manifest", list_key="files")
        assert str(p) in str(info.value)
