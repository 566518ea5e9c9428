"""An OpenAI-compatible chat-completions client: disk cache, pooled connections, retries, budget.

``ChatClient.complete(messages)`` returns the answer text of ``POST {base_url}/chat/completions``.

* Settings come from the arguments, else the environment: ``OPENAI_BASE_URL`` (default
  ``https://api.openai.com/v1``), ``OPENAI_API_KEY``, ``BLACKPROP_LLM_MODEL`` (or ``OPENAI_MODEL``;
  default ``gpt-4o-mini``) and ``BLACKPROP_LLM_BUDGET`` (the request budget; unset: no limit). The
  key is sent in the ``Authorization`` header only: never logged, cached or shown in ``repr`` or errors.
* Layers, outermost first: the ``ResponseCache`` (SQLite, WAL; keyed by model, messages and
  sampling parameters, so a repeated prompt never costs a second request, in this run or a later
  one, in any process sharing the file), then the budget, then the retry loop, then one pooled
  ``httpx.Client`` (HTTP/1.1 keep-alive; at most ``concurrency`` requests in flight, threads allowed).
* Retries with exponential backoff: attempt ``a`` (from 0) waits ``backoff * 2**a * u`` seconds,
  ``u`` uniform in [0.5, 1.5) from a seeded generator, capped at ``max_backoff``; on 408, 409, 425,
  429, 5xx, timeouts, dropped connections and malformed bodies. A ``Retry-After`` header (seconds
  or an HTTP date) on a retried answer is honoured exactly: no request leaves this client before
  that time; one longer than ``max_backoff`` fails the call at once. Other 4xx fail at once.
* Failures, for callers that memoise outcomes (``blackprop.Program``): *transient*, raised as
  ``LLMUnavailable`` (a ``ConnectionError``; asking again later can succeed, so never memoise):
  5xx/429/timeouts/connection errors past the retries, a ``Retry-After`` too long to wait, and
  ``BudgetExhausted``. *Deterministic*, an ``LLMError`` that is no ``ConnectionError``:
  ``MalformedResponse`` (2xx bodies that are no chat completion, past the retries), other 4xx (a
  wrong URL, key or model), and ``blackprop.llm.program.UnparseableAnswer``.
* ``budget``: the most HTTP requests this client may send (retries included). Past it every
  uncached call raises ``BudgetExhausted`` without a request, counted in ``stats.budget_refusals``.
* ``stats`` counts requests, cache hits, retries, failures and tokens, for the run's results.

Example:
    >>> with ChatClient(base_url="http://127.0.0.1:8000/v1", model="m") as client:  # doctest: +SKIP
    ...     client.complete([{"role": "user", "content": "Name a colour."}])
    'Green.'
"""

from __future__ import annotations

import email.utils
import json
import os
import random
import threading
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Any, final

import httpx

from .cache import ResponseCache, cache_key

__all__ = ["BudgetExhausted", "ChatClient", "LLMError", "LLMStats", "LLMUnavailable", "MalformedResponse", "MissingEndpoint"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"
BUDGET_VARIABLE = "BLACKPROP_LLM_BUDGET"
RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class LLMError(RuntimeError):
    """A language-model call that could not produce an answer; deterministic unless also an ``LLMUnavailable``."""


class LLMUnavailable(LLMError, ConnectionError):
    """A transient failure: the endpoint is down, overloaded or rate limiting, or the budget is spent.

    A ``ConnectionError``, so callers that memoise outcomes know to ask again later.
    """


class BudgetExhausted(LLMUnavailable):
    """The client's request budget is spent; cached answers still work."""


class MalformedResponse(LLMError):
    """The endpoint kept answering with a body that is not a chat completion (deterministic)."""


class MissingEndpoint(ValueError):
    """No endpoint is configured (neither a base URL nor an API key)."""


class _Retryable(Exception):
    def __init__(self, reason: str, wait: float | None = None, *, transient: bool = True):
        super().__init__(reason)
        self.wait = wait
        self.transient = transient


@dataclass
@final
class LLMStats:
    """Counters over the client's life. ``requests`` counts HTTP requests sent (retries included);
    ``failures`` counts failed calls, ``transient_failures`` those raised as ``LLMUnavailable``
    other than budget refusals (counted in ``budget_refusals``)."""

    calls: int = 0
    cache_hits: int = 0
    requests: int = 0
    retries: int = 0
    failures: int = 0
    transient_failures: int = 0
    budget_refusals: int = 0
    parse_failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    request_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["request_seconds"] = round(self.request_seconds, 3)
        return out


def _budget_from_env() -> int | None:
    raw = os.environ.get(BUDGET_VARIABLE, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(f"{BUDGET_VARIABLE}={raw!r}: expected a whole number of HTTP requests >= 0 "
                         f"(e.g. {BUDGET_VARIABLE}=500), or unset it for no limit")
    return value


@final
class ChatClient:
    """Chat completions against any OpenAI-compatible endpoint; a context manager (``close()``).

    Args:
        model, base_url, api_key: endpoint settings (environment variables when None, see module doc).
        temperature: sampling temperature (default 0: deterministic answers).
        max_tokens: answer length limit (None: the server's default).
        sampling: further sampling parameters sent as is (e.g. ``{"top_p": 1e-8, "seed": 0}``);
            they are part of the cache key.
        timeout: seconds per request (connect, send, and each read).
        max_retries: retries after the first attempt.
        backoff, max_backoff: first wait and cap of the exponential backoff, in seconds;
            ``max_backoff`` is also the longest ``Retry-After`` waited for.
        concurrency: requests in flight at once (and open connections kept).
        budget: the most HTTP requests to send; None reads ``BLACKPROP_LLM_BUDGET`` (unset: no limit).
        cache: a ``ResponseCache``, a path to its file, None for the default file, or False for none.
        require_endpoint: raise ``MissingEndpoint`` when neither a base URL nor a key is set.
        seed: seed of the backoff jitter.
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
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"ChatClient(base_url=...) / OPENAI_BASE_URL: expected an http:// or https:// URL, "
                             f"got {self.base_url!r}; e.g. http://127.0.0.1:8000/v1")
        self.model = model or os.environ.get("BLACKPROP_LLM_MODEL") or os.environ.get("OPENAI_MODEL") or DEFAULT_MODEL
        self._api_key = api_key or None
        for name, value, low in (("timeout", timeout, 0.0), ("backoff", backoff, 0.0), ("max_backoff", max_backoff, 0.0)):
            if not isinstance(value, (int, float)) or value < low or (name == "timeout" and value == 0):
                raise ValueError(f"ChatClient({name}=...): expected a number > 0 (>= 0 for backoff), got {value!r}")
        for name, value in (("max_retries", max_retries), ("concurrency", concurrency)):
            if not isinstance(value, int) or value < (1 if name == "concurrency" else 0):
                raise ValueError(f"ChatClient({name}=...): expected an int >= {1 if name == 'concurrency' else 0}, got {value!r}")
        if budget is None:
            budget = _budget_from_env()
        elif not isinstance(budget, int) or isinstance(budget, bool) or budget < 0:
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
        self._not_before = 0.0  # time.monotonic() before which no request is sent (Retry-After)
        self._http_client: httpx.Client | None = None

    def __repr__(self) -> str:
        return f"ChatClient(model={self.model!r}, base_url={self.base_url!r}, cache={self.cache!r})"

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections (a later call opens new ones); the cache stays open."""
        with self._lock:
            http, self._http_client = self._http_client, None
        if http is not None:
            http.close()

    # --- public -----------------------------------------------------------------------------
    def complete(self, messages: list[dict[str, str]] | str) -> str:
        """The answer text to ``messages`` (a user prompt string, or chat messages).

        Raises ``LLMUnavailable`` (transient) or ``LLMError`` (deterministic); see the module doc.
        """
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
        attempts = self.max_retries + 1
        last = _Retryable("no attempt made")
        for attempt in range(attempts):
            self._await_retry_after()
            self._take_budget()
            try:
                with self._slots:
                    return self._request_once(body)
            except _Retryable as error:
                last = error
                if error.wait is not None and error.wait > self.max_backoff:
                    raise self._failure(LLMUnavailable(
                        f"{self.base_url}: {error}; the endpoint asks to wait {error.wait:.1f}s (Retry-After), "
                        f"more than max_backoff={self.max_backoff}s; ask again later or raise max_backoff")) from None
                if attempt == attempts - 1:
                    break
                with self._lock:
                    self.stats.retries += 1
                if error.wait is None:  # a Retry-After wait is kept by _await_retry_after
                    time.sleep(min(self.backoff * 2**attempt * (0.5 + self._jitter.random()), self.max_backoff))
            except LLMError as error:
                raise self._failure(error) from None
        message = f"{self.base_url}: no answer after {attempts} attempts; last: {last}"
        if last.transient:
            raise self._failure(LLMUnavailable(message + "; a transient failure: asking again later may succeed"))
        raise self._failure(MalformedResponse(message))

    def _failure(self, error: LLMError) -> LLMError:  # counted, then raised by the caller
        with self._lock:
            self.stats.failures += 1
            if isinstance(error, LLMUnavailable):
                self.stats.transient_failures += 1
        return error

    def _await_retry_after(self) -> None:
        with self._lock:
            remaining = self._not_before - time.monotonic()
        if remaining > self.max_backoff:
            raise self._failure(LLMUnavailable(
                f"{self.base_url}: rate limited for another {remaining:.1f}s (Retry-After), more than "
                f"max_backoff={self.max_backoff}s; no request sent; ask again later or raise max_backoff"))
        if remaining > 0:
            time.sleep(remaining)

    def _take_budget(self) -> None:
        with self._lock:
            if self.budget is not None and self.stats.requests >= self.budget:
                self.stats.budget_refusals += 1
                message = (
                    f"the language-model budget of {self.budget} requests is spent; raise budget= (or "
                    f"{BUDGET_VARIABLE}) to allow more calls; cached prompts still answer"
                )
                if self.stats.budget_refusals == 1:
                    warnings.warn(message + "; uncached calls now fail (counted in stats.budget_refusals)",
                                  RuntimeWarning, stacklevel=4)
                raise BudgetExhausted(message)
            self.stats.requests += 1

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._http_client is None:
                limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
                self._http_client = httpx.Client(timeout=httpx.Timeout(self.timeout), limits=limits)
            return self._http_client

    def _request_once(self, body: bytes) -> tuple[str, tuple[int, int]]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        url = f"{self.base_url}/chat/completions"
        began = time.perf_counter()
        try:  # httpx's own retries (failed connects only) stay off: every attempt is counted here
            response = self._http().post(url, content=body, headers=headers)
        except httpx.UnsupportedProtocol as error:
            raise LLMError(f"{url}: {error}; base_url must start with http:// or https://") from None
        except httpx.TimeoutException as error:
            raise _Retryable(f"timed out after {self.timeout}s ({type(error).__name__})") from None
        except httpx.DecodingError as error:
            raise _Retryable(f"malformed response body ({error})", transient=False) from None
        except (httpx.RequestError, OSError) as error:
            raise _Retryable(f"connection failed: {type(error).__name__}: {error}") from None
        finally:
            with self._lock:
                self.stats.request_seconds += time.perf_counter() - began
        status = response.status_code
        if not 200 <= status < 300:
            detail = _short(response.content)
            if status in RETRYABLE_STATUS or status >= 500:
                wait = _retry_after(response.headers.get("Retry-After"))
                if wait is not None:
                    with self._lock:
                        self._not_before = max(self._not_before, time.monotonic() + wait)
                raise _Retryable(f"HTTP {status}: {detail}", wait)
            raise LLMError(f"{url} answered HTTP {status}: {detail}")
        return self._parse_body(response.content)

    def _parse_body(self, raw: bytes) -> tuple[str, tuple[int, int]]:
        try:
            payload = json.loads(raw)
            choice = payload["choices"][0]
            text = choice["message"]["content"]
            if not isinstance(text, str):
                raise TypeError(f"content is {type(text).__name__}")
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise _Retryable(f"malformed response body ({type(error).__name__}: {error}): {_short(raw)}",
                             transient=False) from None
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
