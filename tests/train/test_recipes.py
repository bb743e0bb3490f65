"""Every recipe record (src/moleport/train/recipes/<run>.md) documents the run's current configuration."""
import json
from pathlib import Path

import pytest

from moleport.train.config import get_run

RECIPES = Path(__file__).resolve().parents[2] / "src" / "moleport" / "train" / "recipes"


@pytest.mark.parametrize("record", sorted(RECIPES.glob("*.md")), ids=lambda p: p.stem)
def test_a_recipe_record_names_the_values_of_its_run(record):
    values = record.with_suffix(".json")
    assert values.is_file(), f"{record.name} needs {values.name}: the run-config values it documents"
    documented = json.loads(values.read_text(encoding="utf-8"))
    run = get_run(record.stem).to_dict()
    assert {k: run[k] for k in documented} == documented, "runs.json changed: measure the record again"
    assert {"arch", "epochs", "lr", "weights", "acquisition", "freeze_blocks", "color_constancy"} <= documented.keys()
