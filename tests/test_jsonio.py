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


def test_atomic_path_renames_on_success_and_leaves_nothing_on_failure(tmp_path):
    import numpy as np

    from moleport.jsonio import atomic_path

    target = tmp_path / "sub" / "x.npy"
    with atomic_path(target, suffix=".npy", mode=0o644) as tmp:
        assert tmp.parent == target.parent and tmp.name.endswith(".npy")
        np.save(tmp, np.arange(3))
    assert np.load(target).tolist() == [0, 1, 2] and (target.stat().st_mode & 0o777) == 0o644
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    with pytest.raises(MyError, match="cannot write the cache"), atomic_path(target, error=MyError, what="cache"):
        raise OSError(28, "No space left on device")
    assert [p.name for p in target.parent.iterdir()] == ["x.npy"] and np.load(target).tolist() == [0, 1, 2]
