"""The docs build's results pages: links rewritten to the generated copies, missing files unlinked."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_hooks():
    spec = importlib.util.spec_from_file_location("docs_site_hooks", ROOT / "docs" / "_hooks" / "site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_results_says_so():
    text = load_hooks().results_index([])
    assert text.startswith("# Results") and "No results exist yet" in text


def test_links_point_at_copies_or_become_text():
    hooks = load_hooks()
    study = ROOT / "experiments" / "demo" / "notes.md"
    pages = {study: "results/demo/notes.md", (ROOT / "RESULTS.md").resolve(): "results/RESULTS.md"}
    extra: dict[str, Path] = {}
    text = ("![plot](../../README.md) [all](../../RESULTS.md#mnist-r) [gone](missing.jsonl) "
            "[web](https://example.org) [here](#top)")
    out = hooks.rewrite_links(text, study, "results/demo/notes.md", pages, extra)
    assert "![plot](../files/README.md)" in out and extra == {"results/files/README.md": ROOT / "README.md"}
    assert "[all](../RESULTS.md#mnist-r)" in out
    assert "`gone`" in out and "[web](https://example.org)" in out and "[here](#top)" in out
