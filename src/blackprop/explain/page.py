"""The explain page: one HTML file with its CSS, JavaScript and data inlined (no CDN, no fetch offline).

The assets (``assets/page.html``, ``style.css``, ``app.js``) ship as package data. The data is the
JSON of ``bp.explain`` (one draw when served; every precomputed draw when exported) and, when
given, the gallery.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

__all__ = ["render_page"]


def asset(name: str) -> str:
    return resources.files("blackprop.explain").joinpath("assets", name).read_text(encoding="utf-8")


def render_page(
    current: dict[str, Any],
    *,
    gallery: dict[str, Any] | None,
    server: bool,
    draws: dict[str, list[dict[str, Any]]] | None = None,
    programs: dict[str, str] | None = None,
    program: str = "blog",
    gallery_enabled: bool = True,
) -> str:
    """The page for ``current`` (an explanation); ``server``: controls ask ``api/explain`` to recompute."""
    boot = {
        "mode": "server" if server else "static",
        "current": current,
        "draws": draws or {"add-mult": [current]},
        "programs": [{"key": k, "label": v} for k, v in (programs or {program: current["program"]["name"]}).items()],
        "program": program,
        "gallery": gallery,
        "gallery_enabled": gallery_enabled and (server or gallery is not None),
    }
    data = json.dumps(boot, allow_nan=False).replace("</", "<\\/")
    page = asset("page.html")
    for marker, text in (("/*STYLE*/", asset("style.css")), ("/*SCRIPT*/", asset("app.js")), ("/*DATA*/", data)):
        page = page.replace(marker, text, 1)
    return page
