"""The explain page, the gallery and the docs site in a real Chromium (Playwright), against bp.explain.

Needs Chromium (Debian: ``apt-get install chromium``; or set ``BLACKPROP_CHROMIUM``) and the
``playwright`` package (``pip install -e '.[browser]'``; Playwright's own browser download is not
used). Without them these tests are skipped with that message, unless ``BLACKPROP_REQUIRE_BROWSER=1``
(CI) turns the skip into a failure. Run them alone with ``make test-browser``.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin, urlparse

import pytest
import torch

import blackprop as bp
from blackprop.explain.programs import rescaled

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HOW = ("install Chromium (apt-get install -y chromium, or set BLACKPROP_CHROMIUM to its path) and Playwright "
       "(pip install -e '.[browser]'), then run: make test-browser")
READ = """() => ({
  label: document.getElementById('method-label').textContent,
  seed: document.getElementById('seed').textContent,
  outputs: [...document.querySelectorAll('.output-value')].map(n => Number(n.dataset.value)),
  loss: Number(document.getElementById('loss').dataset.value),
  grad: [...document.querySelectorAll('td.grad')].map(n => Number(n.dataset.value)),
  exact: [...document.querySelectorAll('td.exact-grad')].map(n => Number(n.dataset.value)),
  diff: [...document.querySelectorAll('td.diff')].map(n => Number(n.dataset.value)),
  samples: [...document.querySelectorAll('tr.sample')].map(n => n.dataset.tuple),
  terms: [...document.querySelectorAll('.term-value')].map(n => Number(n.dataset.value)),
})"""


def chromium_path() -> str | None:
    candidate = os.environ.get("BLACKPROP_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    return candidate if Path(candidate).is_file() else None


@pytest.fixture(scope="module")
def browser() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    path = chromium_path()
    if sync_playwright is None or path is None:
        missing = "the playwright package" if sync_playwright is None else "Chromium"
        if os.environ.get("BLACKPROP_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests required (BLACKPROP_REQUIRE_BROWSER=1) but {missing} is missing: {HOW}")
        pytest.skip(f"browser tests need {missing}: {HOW}")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def server(one_thread) -> Any:
    from blackprop.explain.server import start

    running = start(port=0)
    yield f"http://127.0.0.1:{running.server_address[1]}/"
    running.shutdown()
    running.server_close()


@pytest.fixture(scope="module")
def exported(tmp_path_factory, one_thread) -> Path:
    from blackprop.explain.server import export_page

    return export_page(tmp_path_factory.mktemp("explain") / "page.html", draws=3)


class Page:
    """A browser tab that records console errors, page errors and any request leaving 127.0.0.1/file:."""

    def __init__(self, browser: Any):
        self.page = browser.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.route("**/*", self.local_only)

    def local_only(self, route: Any) -> None:
        url = urlparse(route.request.url)
        if url.scheme in ("file", "data") or url.hostname == "127.0.0.1":
            route.continue_()
        else:
            self.errors.append(f"request to a remote host: {route.request.url}")
            route.abort()

    def open(self, url: str) -> Any:
        self.page.goto(url)
        self.page.wait_for_selector("body[data-ready='1']")
        return self.page

    def recompute(self, action: Any) -> None:
        with self.page.expect_response(lambda r: "api/explain" in r.url):
            action()
        self.page.wait_for_function("document.body.dataset.busy === '0'")

    def method(self, key: str) -> dict[str, Any]:
        self.page.click(f"#method-tabs button[data-method='{key}']")
        return self.page.evaluate(READ)


def assert_shows(shown: dict[str, Any], data: dict[str, Any], key: str) -> None:
    method = data["methods"][key]
    assert shown["label"] == method["label"]
    assert shown["outputs"] == pytest.approx(method["output"], abs=1e-12), key
    assert shown["loss"] == pytest.approx(method["loss"], abs=1e-12), key
    flat = [g for row in method["gradient"] for g in row]
    assert shown["grad"] == pytest.approx(flat, abs=1e-12), key
    assert shown["exact"] == pytest.approx([g for row in data["exact_gradient"] for g in row], abs=1e-12)
    assert shown["diff"] == pytest.approx([d for row in method["difference"] for d in row], abs=1e-12)
    assert shown["samples"] == [",".join(map(str, s["tuple"])) for s in method["samples"]], key
    # the page groups the terms by output: the same multiset of values
    assert sorted(shown["terms"]) == pytest.approx(sorted(t["value"] for t in method["terms"]), abs=1e-12), key


def test_every_method_resample_semiring_and_edits_match_bp_explain(browser, server):
    tab = Page(browser)
    page = tab.open(server)
    expected = bp.explain(None, seed=0)
    assert page.eval_on_selector_all("#method-tabs button", "b => b.map(n => n.dataset.method)") == expected["order"]
    for key in expected["order"]:
        assert_shows(tab.method(key), expected, key)
    exact_shown = tab.method("exact")["outputs"]
    assert [round(x, 2) for x in exact_shown] == [0.02, 0.13, 0.19, 0.45, 0.21]

    tab.recompute(lambda: page.click("#resample"))  # seed 1
    resampled = bp.explain(None, seed=1, methods=["exact", "ised", "reinforce", "reinforce-loo", "indecater+", "nasr"])
    for key in ("ised", "reinforce", "reinforce-loo", "indecater+", "nasr"):
        assert_shows(tab.method(key), resampled, key)
    assert tab.method("ised")["samples"] != [",".join(map(str, s["tuple"])) for s in expected["methods"]["ised"]["samples"]]

    tab.recompute(lambda: page.select_option("#semiring", "min-max"))
    min_max = bp.explain(None, seed=1, semiring="min-max", methods=["exact", "ised", "ised-paper"])
    for key in ("ised", "ised-paper"):
        assert_shows(tab.method(key), min_max, key)

    tab.recompute(lambda: page.fill("input[data-var='0'][data-class='1']", "0.5") or page.press(
        "input[data-var='0'][data-class='1']", "Enter"))
    probs_a = rescaled([0.1, 0.6, 0.3], 1, 0.5)
    edited = bp.explain(None, torch.tensor(probs_a, dtype=torch.float64), torch.tensor([0.2, 0.1, 0.7], dtype=torch.float64),
                        target=3, seed=1, semiring="min-max", methods=["exact", "ised", "reinforce", "anesi"])
    assert page.input_value("input[data-var='0'][data-class='2']") == str(edited["probs"][0][2])
    for key in ("exact", "ised", "reinforce", "anesi"):
        assert_shows(tab.method(key), edited, key)

    tab.recompute(lambda: page.select_option("#target", "2"))
    retargeted = bp.explain(None, torch.tensor(probs_a, dtype=torch.float64),
                            torch.tensor([0.2, 0.1, 0.7], dtype=torch.float64), target=2, seed=1, semiring="min-max",
                            methods=["exact", "top-1", "ised", "indecater"])
    for key in ("exact", "top-1", "ised", "indecater"):
        assert_shows(tab.method(key), retargeted, key)

    # hovering a term lights up exactly the input probabilities it uses
    tab.method("ised")
    term = page.locator(".terms .term").first
    term.hover()
    lit = page.eval_on_selector_all("#probs-table .prob-cell.hl", "cells => cells.map(c => c.dataset.factor)")
    assert sorted(lit) == sorted(term.get_attribute("data-factors").split(","))
    assert tab.errors == []


def test_other_programs_are_offered_and_computed(browser, server):
    tab = Page(browser)
    page = tab.open(server)
    offered = page.eval_on_selector_all("#program option", "options => options.map(o => o.value)")
    assert {"blog", "sum2", "mult2", "leaf-dt"} <= set(offered)
    tab.recompute(lambda: page.select_option("#program", "leaf-dt"))
    data = page.evaluate("() => JSON.parse(document.getElementById('blackprop-data').textContent)")
    assert data["mode"] == "server"
    shown = tab.method("exact")
    assert len(shown["outputs"]) == 11 and sum(shown["outputs"]) == pytest.approx(1.0, abs=1e-9)
    assert tab.errors == []


def test_exported_page_works_offline(browser, exported):
    tab = Page(browser)
    page = tab.open(exported.as_uri())
    assert page.is_disabled("#target") and page.get_attribute("input[data-var='0'][data-class='0']", "readonly")
    first = bp.explain(None, seed=0)
    for key in first["order"]:
        assert_shows(tab.method(key), first, key)
    page.click("#resample")
    assert_shows(tab.method("reinforce"), bp.explain(None, seed=1, methods=["reinforce"]), "reinforce")
    page.select_option("#semiring", "max-mult")
    assert_shows(tab.method("ised"), bp.explain(None, seed=1, semiring="max-mult", methods=["ised"]), "ised")
    assert tab.errors == []


def test_every_gallery_entry_opens(browser, exported):
    from blackprop.tasks import task_names

    tab = Page(browser)
    page = tab.open(exported.as_uri() + "#gallery")
    thumbs = page.eval_on_selector_all(".thumb", "nodes => nodes.map(n => n.dataset.task)")
    assert thumbs == task_names()
    for name in thumbs:
        page.click(f".thumb[data-task='{name}']")
        assert page.text_content("#task-name").startswith(name + ":")
        sizes = page.eval_on_selector_all("#gallery-detail img", "imgs => imgs.map(i => i.complete && i.naturalWidth)")
        assert sizes and all(w > 0 for w in sizes), name
        assert page.locator("#gallery-detail .example").count() == 3
        assert "reads:" in page.text_content("#gallery-detail .symbols")
    assert tab.errors == []


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def docs_site(tmp_path_factory, exported) -> Any:
    site = tmp_path_factory.mktemp("site")
    env = {**os.environ, "BLACKPROP_EXPLAIN_PAGE": str(exported), "NO_MKDOCS_2_WARNING": "1",
           "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_every_docs_page_loads_without_errors_or_broken_links(browser, docs_site):
    tab = Page(browser)
    page = tab.page
    queue, seen, checked, broken = [docs_site], set(), set(), []
    anchors: dict[str, set[str]] = {}
    while queue:
        url = queue.pop()
        if url in seen:
            continue
        seen.add(url)
        page.goto(url)
        page.wait_for_load_state("load")
        targets = page.eval_on_selector_all(
            "a[href], img[src], iframe[src], link[href], script[src]",
            "nodes => nodes.map(n => n.href || n.src)")
        for target in targets:
            absolute, fragment = urldefrag(urljoin(url, target))
            if not absolute.startswith(docs_site):
                continue  # the external links (none are fetched: offline)
            if fragment and absolute.endswith("/"):
                anchors.setdefault(absolute, set()).add(fragment)
            if absolute not in checked:
                checked.add(absolute)
                try:
                    urllib.request.urlopen(absolute, timeout=30).close()
                except urllib.error.HTTPError as error:
                    broken.append(f"{url} -> {absolute}: {error.code}")
            if absolute.endswith("/") and absolute not in seen:
                queue.append(absolute)
    for absolute, fragments in anchors.items():
        page.goto(absolute)
        missing = page.evaluate("ids => ids.filter(id => document.getElementById(decodeURIComponent(id)) === null)",
                                sorted(fragments))
        broken.extend(f"{absolute}#{fragment}: no such anchor" for fragment in missing)
    expected = {"", "tutorials/own-program/", "explain/", "gallery/", "reference/", "results/", "reliability/"}
    assert {u[len(docs_site):] for u in seen} >= expected
    assert broken == []
    assert tab.errors == []
