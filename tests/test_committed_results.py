"""Committed results agree with the grid files that describe them."""

import json

from tests.conftest import REPO_ROOT
from utils.results import read_rows

NOT_IN_THE_GRID = {15}  # a configuration the flags refuse since it failed (regional compile with CUDA graphs)


def test_ladder_csv_steps_are_the_grid_steps():
    grid = json.loads((REPO_ROOT / "inference" / "grids" / "flux-perf-ladder.json").read_text())["ladder"]
    rows = read_rows(REPO_ROOT / "results" / "flux-perf-ladder.csv")
    for _, row in rows.iterrows():
        step = int(row.step)
        if step in NOT_IN_THE_GRID:
            continue
        entry = grid[step - 1]
        assert row.lever == entry["lever"], step
        base = entry.get("base", None if step == 1 else step - 1)
        assert (None if row.base_step != row.base_step else int(row.base_step)) == base, step
