"""Checks on the real datasets in ../shared (skipped when absent)."""
from collections import Counter, defaultdict

import pytest

from moleport.data.sources import open_source
from moleport.data.split import assign_splits, group_ids, make_manifest


def test_ham_source_counts(ham_dir):
    recs = open_source(ham_dir)
    assert len(recs) == 7818
    assert Counter(r.label for r in recs) == {"melanoma": 1113, "nevus": 6705}
    assert len({r.lesion_id for r in recs}) == 6017


def test_ham_lesion_grouping_without_decoding(ham_dir):
    recs = open_source(ham_dir)
    labels = [r.label for r in recs]
    splits = assign_splits(labels, group_ids([r.lesion_id for r in recs]), seed=0)
    by_lesion = defaultdict(set)
    for r, s in zip(recs, splits):
        by_lesion[r.lesion_id].add(s)
    assert all(len(s) == 1 for s in by_lesion.values())
    for lab, n in (("melanoma", 1113), ("nevus", 6705)):
        c = Counter(s for s, x in zip(splits, labels) if x == lab)
        assert abs(c["train"] / n - 0.6) < 0.01 and abs(c["test"] / n - 0.2) < 0.01


@pytest.mark.heavy
def test_ham_full_split(ham_dir):
    """Decodes all 7,818 images (a few seconds to a minute)."""
    m = make_manifest(open_source(ham_dir), seed=0)
    by_lesion = defaultdict(set)
    for it in m.items:
        by_lesion[it.lesion_id].add(it.split)
    assert len(by_lesion) == 6017 and all(len(s) == 1 for s in by_lesion.values())
    assert len({it.sha256 for it in m.items}) == len(m.items)
    assert 7800 <= len(m.items) <= 7818


def test_external_dev_imagefolder(external_dir):
    recs = open_source(external_dir)
    assert Counter(r.label for r in recs) == {"melanoma": 178, "nevus": 118}
