"""The study folders: every spec loads, and the regenerated reports show the figures of the reports
they replace (RESULTS.md and results/efficiency.md before the move): every figure in its column, row
names and row splits aside, since the labels follow today's defaults and stale rows carry a †."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from blackprop.cli import main
from blackprop.run.spec import load_study

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"
GOLDEN = json.loads((Path(__file__).parent / "data" / "figures_before_move.json").read_text())


def table_rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")][1:]
            for line in text.splitlines() if line.startswith("|") and not line.startswith("|---")]


def sections(text: str) -> dict[str, str]:
    out: dict[str, list[str]] = {}
    name = ""
    for line in text.splitlines():
        if line.startswith("## "):
            name = line[3:].strip()
            out[name] = []
        elif name:
            out[name].append(line)
    return {k: "\n".join(v) for k, v in out.items()}


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, dict[str, str]]:
    """Each study's report over its moved rows only (rows added later do not change the old figures)."""
    folder = tmp_path_factory.mktemp("reports")
    out = {}
    for study in sorted({g["study"] for g in GOLDEN}):
        copy = folder / study
        copy.mkdir()
        (copy / "spec.toml").write_text((EXPERIMENTS / study / "spec.toml").read_text())
        moved = [line for line in (EXPERIMENTS / study / "results.jsonl").read_text().splitlines()
                 if "migrated_from" in json.loads(line)]
        (copy / "results.jsonl").write_text("\n".join(moved) + "\n")
        assert main(["report", str(copy), "--no-plots"]) == 0
        out[study] = sections((copy / "report.md").read_text())
    return out


def figures(rows: list[list[str]]) -> Counter[tuple[int, str]]:
    """Every non-empty cell with its column: a table row split in two (runs of settings that differ from
    today's defaults in different ways), or two rows of the same settings joined, keep their figures;
    only the empty cells ("–") change."""
    return Counter((column, cell) for row in rows for column, cell in enumerate(row) if not cell.startswith("–"))


@pytest.mark.parametrize("golden", GOLDEN, ids=[g["before"] for g in GOLDEN])
def test_regenerated_report_shows_the_figures_of_the_old_one(golden, reports):
    report = reports[golden["study"]]
    rows = [row for title in golden["sections"] for row in table_rows(report[title])]
    assert figures(rows) == figures(golden["rows"])


def test_every_study_has_a_spec_notes_and_no_script():
    studies = sorted(p for p in EXPERIMENTS.iterdir() if p.is_dir())
    assert {"mnist_r", "hwf", "leaf_scene", "sudoku", "efficiency", "ablations", "slow_program"} <= {p.name for p in studies}
    for folder in studies:
        load_study(folder)
        assert (folder / "notes.md").is_file()
    assert not list(EXPERIMENTS.rglob("*.sh")) and not list(ROOT.glob("results/**/*.sh"))


def test_moved_rows_name_their_origin_and_stale_ones_say_why():
    rows = [json.loads(line) for path in EXPERIMENTS.glob("*/results.jsonl") for line in path.read_text().splitlines()]
    moved = [r for r in rows if "migrated_from" in r]
    assert len(moved) == 470
    stale = [r for r in moved if r.get("stale")]
    assert any("ised-sub" in r["stale"] for r in stale)
    assert all(r["stale"].startswith(("its command", "no command recorded", "estimator ")) for r in stale)
