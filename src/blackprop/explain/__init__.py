"""``blackprop explain``: every estimator on one example, a program gallery, and the page showing both.

``bp.explain(layer, *probs, target=...)`` computes the data (``compute``); ``page`` renders it as one
self-contained HTML page; ``server`` serves that page on 127.0.0.1 and recomputes on request;
``gallery`` shows every registered task on real inputs; ``cli`` adds ``blackprop explain``.
"""

from .cli import add_explain_parser
from .compute import Explanation, explain, method_keys

__all__ = ["Explanation", "add_explain_parser", "explain", "method_keys"]
