"""An OpenAI-compatible chat-completions client: disk cache, retries, concurrency limit, budget.

``ChatClient.complete(messages)`` returns the answer text of ``POST {base_url}/chat/completions``.

* Settings come from the arguments, else the environment: ``OPENAI_BASE_URL`` (default
  ``https://api.openai.com/v1``), ``OPENAI_API_KEY`` and ``BLACKPROP_LLM_MODEL`` (or
  ``OPENAI_MODEL``; default ``gpt-4o-mini``). The key is sent in the ``Authorization`` header
  only: never logged, cached or shown in ``repr`` or errors.
* Cache: answers are stored in a ``ResponseCache`` (SQLite, WAL) keyed by model, messages and
  sampling parameters, so a repeated prompt never costs a second call, in this run or any later
  one, in any process sharing the file.
* Retries with exponential backoff (``backoff * 2**attempt``, capped at ``max_backoff``) on 429
  (honouring ``Retry-After``), 5xx, timeouts, dropped connections and malformed bodies; other
  4xx fail at once.
* At most ``concurrency`` requests in flight at once (a semaphore; callers may use threads).
* ``budget``: the most HTTP requests this client may send (retries included). Past it every
  uncached call raises ``BudgetExhausted`` (a ``LLMError``), counted in ``stats.budget_refusals``.
* ``stats`` counts requests, cache hits, retries, failures and tokens, for the run's results.

Only the standard library is used for HTTP.

Example:
    >>> client = ChatClient(base_url="http://127.0.0.1:8000/v1", model="m", api_key="k")  # doctest: +SKIP
    >>> client.complete([{"role": "user", "content": "Name a colour."}])                # doctest: +SKIP
    'Green.'
"""

from __future__ import annotations

import email.utils
import http.client
import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import asdict, dataclass
from typing import Any

from .cache import ResponseCache, cache_key

__all__ = ["BudgetExhausted", "ChatClient", "LLMError", "LLMStats", "MissingEndpoint"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"
RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class LLMError(RuntimeError):
    """A language-model call that could not produce an answer (after any retries)."""


class BudgetExhausted(LLMError):
    """The client's request budget is spent; cached answers still work."""


class MissingEndpoint(ValueError):
    """No endpoint is configured (neither a base URL nor an API key)."""


class _RetryableError(Exception):
    def __init__(self, reason: str, wait: float | None = None):
        super().__init__(reason)
        self.wait = wait


@dataclass
class LLMStats:
    """Counters over the client's life. ``requests`` counts HTTP requests sent (retries included)."""

    calls: int = 0
    cache_hits: int = 0
    requests: int = 0
    retries: int = 0
    failures: int = 0
    budget_refusals: int = 0
    parse_failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    request_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["request_seconds"] = round(self.request_seconds, 3)
        return out


class ChatClient:
    """Chat completions against any OpenAI-compatible endpoint.

    Args:
        model, base_url, api_key: endpoint settings (environment variables when None, see module doc).
        temperature: sampling temperature (default 0: deterministic answers).
        max_tokens: answer length limit (None: the server's default).
        sampling: further sampling parameters sent as is (e.g. ``{"top_p": 1e-8, "seed": 0}``);
            they are part of the cache key.
        timeout: seconds per request.
        max_retries: retries after the first attempt.
        backoff, max_backoff: first wait and cap of the exponential backoff, in seconds.
        concurrency: requests in flight at once.
        budget: the most HTTP requests to send (None: no limit).
        cache: a ``ResponseCache``, a path to its file, None for the default file, or False for none.
        require_endpoint: raise ``MissingEndpoint`` when neither a base URL nor a key is set.
    """

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        temperature: float = 0.0,
        max_tokens: int | None = None,
        sampling: dict[str, Any] | None = None,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        concurrency: int = 4,
        budget: int | None = None,
        cache: ResponseCache | str | os.PathLike[str] | None | bool = None,
        require_endpoint: bool = True,
        seed: int = 0,
    ):
        base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        if require_endpoint and not base_url and not api_key:
            raise MissingEndpoint(
                "no language-model endpoint: set OPENAI_BASE_URL (any OpenAI-compatible server, e.g. "
                "http://127.0.0.1:8000/v1) and/or OPENAI_API_KEY, and BLACKPROP_LLM_MODEL for the model name"
            )
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.model = model or os.environ.get("BLACKPROP_LLM_MODEL") or os.environ.get("OPENAI_MODEL") or DEFAULT_MODEL
        self._api_key = api_key or None
        for name, value, low in (("timeout", timeout, 0.0), ("backoff", backoff, 0.0), ("max_backoff", max_backoff, 0.0)):
            if not isinstance(value, (int, float)) or value < low or (name == "timeout" and value == 0):
                raise ValueError(f"ChatClient({name}=...): expected a number > 0 (>= 0 for backoff), got {value!r}")
        for name, value in (("max_retries", max_retries), ("concurrency", concurrency)):
            if not isinstance(value, int) or value < (1 if name == "concurrency" else 0):
                raise ValueError(f"ChatClient({name}=...): expected an int >= {1 if name == 'concurrency' else 0}, got {value!r}")
        if budget is not None and (not isinstance(budget, int) or budget < 0):
            raise ValueError(f"ChatClient(budget=...): expected None or an int >= 0, got {budget!r}")
        self.sampling: dict[str, Any] = {"temperature": float(temperature), **(sampling or {})}
        if max_tokens is not None:
            self.sampling["max_tokens"] = int(max_tokens)
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.concurrency = concurrency
        self.budget = budget
        if cache is False:
            self.cache: ResponseCache | None = None
        elif isinstance(cache, ResponseCache):
            self.cache = cache
        else:
            self.cache = ResponseCache(None if cache is None or cache is True else cache)
        self.stats = LLMStats()
        self._slots = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()
        self._jitter = random.Random(seed)
        self._in_flight: dict[str, threading.Event] = {}

    def __repr__(self) -> str:
        return f"ChatClient(model={self.model!r}, base_url={self.base_url!r}, cache={self.cache!r})"

    # --- public -----------------------------------------------------------------------------
    def complete(self, messages: list[dict[str, str]] | str) -> str:
        """The answer text to ``messages`` (a user prompt string, or chat messages)."""
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        key = cache_key(self.model, messages, self.sampling)
        with self._lock:
            self.stats.calls += 1
        while True:
            if self.cache is not None:
                cached = self.cache.get(key)
                if cached is not None:
                    with self._lock:
                        self.stats.cache_hits += 1
                    return cached.text
            with self._lock:  # one request per key at a time: concurrent askers wait for its answer
                pending = self._in_flight.get(key)
                if pending is None:
                    self._in_flight[key] = threading.Event()
            if pending is None:
                break
            pending.wait()
            if self.cache is None:
                break
        try:
            text, usage = self._request_with_retries(messages)
            if self.cache is not None:
                self.cache.put(key, self.model, text, prompt_tokens=usage[0], completion_tokens=usage[1])
        finally:
            with self._lock:
                self._in_flight.pop(key).set()
        return text

    # --- mechanics ----------------------------------------------------------------------------
    def _request_with_retries(self, messages: list[dict[str, str]]) -> tuple[str, tuple[int, int]]:
        body = json.dumps({"model": self.model, "messages": messages, **self.sampling}).encode()
        last_reason = ""
        for attempt in range(self.max_retries + 1):
            self._take_budget()
            try:
                with self._slots:
                    return self._request_once(body)
            except _RetryableError as error:
                last_reason = str(error)
                if attempt == self.max_retries:
                    break
                wait = error.wait if error.wait is not None else self.backoff * 2**attempt * (0.5 + self._jitter.random())
                with self._lock:
                    self.stats.retries += 1
                time.sleep(min(max(wait, 0.0), self.max_backoff))
            except LLMError:
                with self._lock:
                    self.stats.failures += 1
                raise
        with self._lock:
            self.stats.failures += 1
        raise LLMError(f"{self.base_url}: no answer after {self.max_retries + 1} attempts; last: {last_reason}")

    def _take_budget(self) -> None:
        with self._lock:
            if self.budget is not None and self.stats.requests >= self.budget:
                self.stats.budget_refusals += 1
                message = (
                    f"the language-model budget of {self.budget} requests is spent; raise budget= (or "
                    "BLACKPROP_LLM_BUDGET) to allow more calls; cached prompts still answer"
                )
                if self.stats.budget_refusals == 1:
                    warnings.warn(message + "; uncached calls now fail (counted in stats.budget_refusals)",
                                  RuntimeWarning, stacklevel=4)
                raise BudgetExhausted(message)
            self.stats.requests += 1

    def _request_once(self, body: bytes) -> tuple[str, tuple[int, int]]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        request = urllib.request.Request(f"{self.base_url}/chat/completions", data=body, headers=headers, method="POST")
        began = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            status = error.code
            detail = _short(error.read())
            if status in RETRYABLE_STATUS or status >= 500:
                raise _RetryableError(f"HTTP {status}: {detail}", _retry_after(error.headers.get("Retry-After"))) from None
            raise LLMError(f"{self.base_url}/chat/completions answered HTTP {status}: {detail}") from None
        except TimeoutError as error:
            raise _RetryableError(f"timed out after {self.timeout}s ({error})") from None
        except urllib.error.URLError as error:
            if isinstance(error.reason, TimeoutError):
                raise _RetryableError(f"timed out after {self.timeout}s") from None
            raise _RetryableError(f"connection failed: {error.reason}") from None
        except (http.client.HTTPException, ConnectionError, OSError) as error:
            raise _RetryableError(f"connection failed: {type(error).__name__}: {error}") from None
        finally:
            with self._lock:
                self.stats.request_seconds += time.perf_counter() - began
        return self._parse_body(raw)

    def _parse_body(self, raw: bytes) -> tuple[str, tuple[int, int]]:
        try:
            payload = json.loads(raw)
            choice = payload["choices"][0]
            text = choice["message"]["content"]
            if not isinstance(text, str):
                raise TypeError(f"content is {type(text).__name__}")
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise _RetryableError(f"malformed response body ({type(error).__name__}: {error}): {_short(raw)}") from None
        usage = payload.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        completion_tokens = int(usage.get("completion_tokens") or 0)
        with self._lock:
            self.stats.prompt_tokens += prompt_tokens
            self.stats.completion_tokens += completion_tokens
        return text, (prompt_tokens, completion_tokens)


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _short(raw: bytes, limit: int = 200) -> str:
    text = raw.decode("utf-8", errors="replace").strip().replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "..."
