"""mkdocs hooks: the results pages and the explain page, generated at build time.

* Results: every ``experiments/<study>/notes.md`` and ``experiments/<study>/report.md`` (the new
  layout) and ``RESULTS.md`` (today's) become pages under ``results/``; images and other files they
  link to are copied beside them, and a link to a file that does not exist becomes plain text (so
  ``--strict`` fails on our own pages' links, never on a results file's). With no results at all,
  ``results/index.md`` says so.
* ``explain/page.html``: the self-contained page of ``blackprop explain --export`` (methods and
  gallery, three draws), embedded by ``explain.md`` and ``gallery.md``.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def results_sources() -> list[tuple[str, Path]]:
    """(page path under the site, source file) for every results document there is."""
    found = []
    for study in sorted((ROOT / "experiments").glob("*/")):
        for name in ("notes.md", "report.md"):
            if (study / name).is_file():
                found.append((f"results/{study.name}/{name}", study / name))
    if (ROOT / "RESULTS.md").is_file():
        found.append(("results/RESULTS.md", ROOT / "RESULTS.md"))
    return found


def rewrite_links(text: str, source: Path, page: str, pages: dict[Path, str], extra: dict[str, Path]) -> str:
    """Point links at the generated copies; copy linked files; unlink what does not exist."""

    def replace(match: re.Match[str]) -> str:
        bang, label, target = match.groups()
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            return match.group(0)
        path_part, _, anchor = target.partition("#")
        resolved = (source.parent / path_part).resolve()
        if resolved in pages:
            new = pages[resolved]
        elif resolved.is_file() and ROOT in resolved.parents:
            new = "results/files/" + resolved.relative_to(ROOT).as_posix()
            extra[new] = resolved
        else:
            return f"`{label}`" if not bang else f"*(missing image: {label})*"
        relative = posixpath.relpath(new, posixpath.dirname(page))
        return f"{bang}[{label}]({relative}{'#' + anchor if anchor else ''})"

    return LINK.sub(replace, text)


def on_files(files: Files, config: Any) -> Files:
    sources = results_sources()
    pages = {source.resolve(): page for page, source in sources}
    extra: dict[str, Path] = {}
    for page, source in sources:
        text = rewrite_links(source.read_text(encoding="utf-8"), source, page, pages, extra)
        files.append(File.generated(config, page, content=text))
    for uri, path in extra.items():
        files.append(File.generated(config, uri, content=path.read_bytes()))
    files.append(File.generated(config, "results/index.md", content=results_index(sources)))
    files.append(File.generated(config, "explain/page.html", content=explain_page()))
    return files


def results_index(sources: list[tuple[str, Path]]) -> str:
    lines = ["# Results", ""]
    if not sources:
        lines += ["No results exist yet: no `experiments/<study>/notes.md` or `report.md`, and no `RESULTS.md`.",
                  "Run a study (see the README) and rebuild the docs."]
        return "\n".join(lines) + "\n"
    lines += ["Generated when the docs are built from the repository's results files:", ""]
    for page, source in sources:
        title = next((line.lstrip("# ").strip() for line in source.read_text(encoding="utf-8").splitlines()
                      if line.startswith("#")), source.name)
        lines.append(f"- [{title}]({posixpath.relpath(page, 'results')}) (`{source.relative_to(ROOT).as_posix()}`)")
    return "\n".join(lines) + "\n"


def explain_page() -> str:
    """The exported page; ``BLACKPROP_EXPLAIN_PAGE`` names one already exported (the browser tests reuse theirs)."""
    import os
    import tempfile

    if os.environ.get("BLACKPROP_EXPLAIN_PAGE"):
        return Path(os.environ["BLACKPROP_EXPLAIN_PAGE"]).read_text(encoding="utf-8")

    from blackprop.explain.server import export_page

    with tempfile.TemporaryDirectory() as folder:
        return export_page(Path(folder) / "page.html", draws=3).read_text(encoding="utf-8")
