"""``blackprop explain``: serve the explain page on 127.0.0.1, or export it as one offline HTML file.

    blackprop explain --port 8000                 # http://127.0.0.1:8000
    blackprop explain --export docs/explain.html  # self-contained, precomputed draws, no server
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_explain_parser", "run_explain"]


def add_explain_parser(subcommands: Any) -> argparse.ArgumentParser:
    """Add the ``explain`` subcommand to an ``argparse`` subparsers object (sets ``handler``)."""
    parser = subcommands.add_parser(
        "explain", help="the interactive method comparison and program gallery (local server or offline page)",
        description="Compare every estimator on one example (default: the ISED blog's a+b=3) and browse the "
                    "program gallery. Serves on 127.0.0.1 unless --export is given.")
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default 8000; 0: any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    parser.add_argument("--export", metavar="PAGE.html",
                        help="write a self-contained page (no server, no CDN) with precomputed draws and exit")
    parser.add_argument("--draws", type=int, default=5,
                        help="with --export: precomputed draws (seeds) per method and semiring (default 5)")
    parser.add_argument("--no-gallery", action="store_true", help="leave the program gallery out")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first draw (default 0)")
    parser.set_defaults(handler=run_explain)
    return parser


def run_explain(args: argparse.Namespace) -> int:
    from .server import export_page, serve

    try:
        if args.export:
            path = export_page(args.export, draws=args.draws, gallery=not args.no_gallery, seed=args.seed)
            print(f"wrote {path} (self-contained; open it in a browser, no server needed)")
            return 0
        serve(args.host, args.port, gallery=not args.no_gallery)
    except (OSError, ValueError) as error:
        print(f"blackprop explain: {error}", file=sys.stderr)
        return 2
    return 0
