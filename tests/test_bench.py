from moleport.bench import _flatten, _table


def test_nested_bench_results_become_one_row_each():
    rows = _flatten({"decode": {"images": 2, "images_per_s": 10.0}, "load": {"images": 2, "images_per_s": 5.0}})
    assert rows == [{"step": "decode", "images": 2, "images_per_s": 10.0},
                    {"step": "load", "images": 2, "images_per_s": 5.0}]
    assert _flatten({"images": 3}) == [{"images": 3}]
    table = _table(rows)
    assert table.splitlines()[0] == "| step | images | images_per_s |" and "| decode | 2 | 10.00 |" in table
