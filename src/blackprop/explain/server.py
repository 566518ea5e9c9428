"""The explain server: ``http.server`` on 127.0.0.1, and the offline export.

Routes: ``GET /`` the page; ``POST /api/explain`` with ``{program, probs, target_index, seed, k,
semiring, edited}`` recomputes with ``bp.explain`` and answers its JSON (400 with ``{"error": ...}``
for a bad request); ``GET /api/programs``; ``GET /api/gallery`` (computed on first request).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, final

import torch

from ..spaces import Discrete
from .compute import Explanation, explain
from .page import render_page
from .programs import BLOG, default_example, offered_programs, program_named, rescaled

__all__ = ["ExplainServer", "explain_request", "export_page", "serve", "start"]

SEMIRING_NAMES = ("add-mult", "max-mult", "min-max")
MAX_K = 200


def explain_request(body: dict[str, Any]) -> Explanation:
    """Recompute for a page request; raises ValueError naming the bad field."""
    key = body.get("program") or BLOG
    program = program_named(str(key))
    k = body.get("k", 5)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ValueError(f"k: give an integer from 1 to {MAX_K}, got {k!r}")
    seed = body.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: give an integer >= 0, got {seed!r}")
    semiring = body.get("semiring", "add-mult")
    if semiring not in SEMIRING_NAMES:
        raise ValueError(f"semiring: give one of {', '.join(SEMIRING_NAMES)}, got {semiring!r}")
    probs, target = default_example(str(key), program)
    if body.get("probs") is not None:
        probs = [[float(x) for x in row] for row in body["probs"]]
        edited = body.get("edited")
        if edited:
            v, c, value = int(edited[0]), int(edited[1]), float(edited[2])
            if not (0 <= v < len(probs) and 0 <= c < len(probs[v])):
                raise ValueError(f"edited: no probability at input {v}, class {c}")
            probs[v] = rescaled(probs[v], c, value)
    if body.get("target_index") is not None:
        index = int(body["target_index"])
        values = program.output.values if isinstance(program.output, Discrete) else []
        if not 0 <= index < len(values):
            raise ValueError(f"target_index: give 0 to {len(values) - 1}, got {index}")
        target = values[index]
    tensors = [torch.tensor(p, dtype=torch.float64) for p in probs]
    return explain(program, *tensors, target=target, seed=seed, num_samples=k, semiring=semiring)


@final
class ExplainServer(ThreadingHTTPServer):
    """Serves one page; ``gallery`` is computed once, on its first request."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], gallery: bool = True):
        super().__init__(address, Handler)
        self.with_gallery = gallery
        self.gallery_data: dict[str, Any] | None = None
        self.lock = threading.Lock()

    def gallery(self) -> dict[str, Any]:
        with self.lock:
            if self.gallery_data is None:
                from .gallery import gallery

                self.gallery_data = gallery()
            return self.gallery_data


@final
class Handler(BaseHTTPRequestHandler):
    server: ExplainServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet: one line per request is noise here
        pass

    def reply(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def reply_json(self, status: int, data: Any) -> None:
        self.reply(status, json.dumps(data).encode(), "application/json")

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.path.split("?")[0]
        if path in ("/", "/index.html"):
            current = explain_request({})
            page = render_page(current, gallery=None, server=True, programs=offered_programs(),
                               gallery_enabled=self.server.with_gallery)
            self.reply(200, page.encode(), "text/html; charset=utf-8")
        elif path == "/api/programs":
            self.reply_json(200, offered_programs())
        elif path == "/api/gallery" and self.server.with_gallery:
            self.reply_json(200, self.server.gallery())
        else:
            self.reply_json(404, {"error": f"no such page {path!r}; the page is at /"})

    def do_POST(self) -> None:  # noqa: N802
        if self.path.split("?")[0] != "/api/explain":
            self.reply_json(404, {"error": f"no such endpoint {self.path!r}; POST to /api/explain"})
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(body, dict):
                raise ValueError(f"the request body must be a JSON object, got {type(body).__name__}")
            self.reply_json(200, explain_request(body))
        except (ValueError, TypeError, KeyError, IndexError) as error:
            self.reply_json(400, {"error": str(error)})


def start(host: str = "127.0.0.1", port: int = 0, gallery: bool = True) -> ExplainServer:
    """Start a server in a background thread (``port=0``: any free port; ``server.server_address``)."""
    server = ExplainServer((host, port), gallery=gallery)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def serve(host: str, port: int, gallery: bool = True) -> None:
    """Serve until interrupted (Ctrl-C)."""
    server = ExplainServer((host, port), gallery=gallery)
    print(f"blackprop explain: http://{host}:{server.server_address[1]}/  (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def precomputed_draws(draws: int, seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """The blog example for seeds seed..seed+draws-1; the other semirings recompute ISED's two variants."""
    base = [explain_request({"seed": s}) for s in range(seed, seed + draws)]
    out: dict[str, list[dict[str, Any]]] = {"add-mult": list(base)}
    for name in SEMIRING_NAMES[1:]:
        out[name] = []
        for s, draw in zip(range(seed, seed + draws), base, strict=True):
            variant = explain(None, seed=s, semiring=name, methods=["exact", "ised", "ised-paper"])
            methods = {**draw["methods"], "ised": variant["methods"]["ised"], "ised-paper": variant["methods"]["ised-paper"]}
            out[name].append(Explanation({**draw, "methods": methods, "settings": {**draw["settings"], "semiring": name}}))
    return out


def export_page(path: str | Path, draws: int = 5, gallery: bool = True, seed: int = 0) -> Path:
    """Write the self-contained page: the blog example with ``draws`` precomputed draws, and the gallery."""
    if draws < 1:
        raise ValueError(f"--draws: give at least 1, got {draws}")
    target = Path(path)
    if not target.parent.is_dir():
        raise OSError(f"--export {path}: the folder {target.parent} does not exist; create it or pick another path")
    all_draws = precomputed_draws(draws, seed)
    gallery_data = None
    if gallery:
        from .gallery import gallery as make_gallery

        gallery_data = make_gallery()
    page = render_page(all_draws["add-mult"][0], gallery=gallery_data, server=False, draws=all_draws,
                       programs={BLOG: all_draws["add-mult"][0]["program"]["name"]}, gallery_enabled=gallery)
    target.write_text(page, encoding="utf-8")
    return target
