"""Language-model programs: a prompt over symbols, a chat call, an answer parsed into the outputs.

``llm_program(client, inputs, output, prompt)`` is a ``blackprop.Program`` whose function builds
the chat messages from the symbols, asks ``client`` (cached, retried, budgeted) and parses the
answer into ``output``. An answer that names no output value, a spent budget or a call that
failed after its retries is a *failed sample* (``Program.stats.failures``; the client's
``stats.parse_failures`` / ``budget_refusals`` / ``failures`` / ``transient_failures`` say which),
never a crash. A spent budget and an endpoint that is down, overloaded or rate limiting raise
``LLMUnavailable``, a ``ConnectionError``: a transient failure, which the program layer does not
memoise, so the tuple is asked again later. An unparseable answer (``UnparseableAnswer``) or a
malformed body (``MalformedResponse``) is deterministic and may be memoised.

Parsing is deterministic: ``first_mention`` picks the output value whose name (or alias) appears
earliest in the answer, whole words, case-insensitive; longer names win at the same position.

Example:
    >>> parse = first_mention(["kitchen", "office"], aliases={"office": ["study"]})
    >>> parse("Most likely a study, maybe a kitchen.")
    'office'
"""

from __future__ import annotations

import concurrent.futures
import re
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Sequence as SequenceABC
from typing import Any, final

from ..program import Program
from ..spaces import Discrete, Open, Sequence
from .client import ChatClient, LLMError

__all__ = ["LLMFunction", "UnparseableAnswer", "first_mention", "llm_program"]

Messages = list[dict[str, str]]


class UnparseableAnswer(LLMError):
    """The model's answer names none of the program's output values."""


def first_mention(values: Iterable[Any], aliases: Mapping[Any, Iterable[str]] | None = None) -> Callable[[str], Any]:
    """A parser returning the value whose name or alias occurs first in an answer.

    Raises ``UnparseableAnswer`` when none occurs.
    """
    names: list[tuple[str, Any]] = []
    for value in values:
        names.append((str(value), value))
        for alias in (aliases or {}).get(value, ()):
            names.append((alias, value))
    names.sort(key=lambda pair: -len(pair[0]))
    pattern = re.compile(r"(?<![\w])(" + "|".join(re.escape(n) for n, _ in names) + r")(?![\w])", re.IGNORECASE)
    lookup = {name.lower(): value for name, value in reversed(names)}

    def parse(answer: str) -> Any:
        match = pattern.search(answer)
        if match is None:
            raise UnparseableAnswer(f"the answer names none of {sorted({str(v) for _, v in names})}: {answer[:200]!r}")
        return lookup[match.group(1).lower()]

    return parse


@final
class LLMFunction:
    """``fn(*symbols)``: prompt -> ``client.complete`` -> parse; the function inside an LLM Program."""

    def __init__(self, client: ChatClient, prompt: Callable[..., Messages | str], parse: Callable[[str], Any],
                 system: str | None = None):
        self.client = client
        self.prompt = prompt
        self.parse = parse
        self.system = system

    def messages(self, *symbols: Any) -> Messages:
        built = self.prompt(*symbols)
        if isinstance(built, str):
            built = [{"role": "user", "content": built}]
        if self.system is not None:
            built = [{"role": "system", "content": self.system}, *built]
        return built

    def __call__(self, *symbols: Any) -> Any:
        answer = self.client.complete(self.messages(*symbols))
        try:
            return self.parse(answer)
        except Exception:
            with self.client._lock:
                self.client.stats.parse_failures += 1
            raise


def llm_program(
    client: ChatClient,
    inputs: SequenceABC[Discrete | Sequence],
    output: Discrete | Open,
    prompt: Callable[..., Messages | str],
    *,
    parse: Callable[[str], Any] | None = None,
    system: str | None = None,
    name: str = "llm",
    parallel: bool = True,
) -> Program:
    """A Program asking ``client`` about each distinct symbol tuple.

    Args:
        client: a ``ChatClient``.
        inputs, output: the program's spaces (as for ``Program``).
        prompt: ``prompt(*symbols)`` -> a user prompt string or a list of chat messages.
        parse: answer text -> output value (default: ``first_mention(output.values)``); raise to
            mark the sample failed.
        system: an optional system message put first.
        parallel: run the distinct tuples of a batch on ``client.concurrency`` threads.

    ``program.fn.client.stats`` holds the call and token counts.
    """
    if parse is None:
        if not isinstance(output, Discrete):
            raise ValueError("llm_program(parse=None): an Open output space needs an explicit parse function")
        parse = first_mention(output.values)
    fn = LLMFunction(client, prompt, parse, system)
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=client.concurrency) if parallel and client.concurrency > 1 else None
    return Program(fn, inputs=inputs, output=output, name=name, executor=executor)
