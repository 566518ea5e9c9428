"""A persistent response cache for language-model calls: one SQLite file in WAL mode.

Keyed by ``sha256`` of the canonical JSON of (model, messages, sampling parameters), so the
same prompt asked of the same model with the same settings is answered from disk, across runs
and across processes sharing the file. Each insert is its own committed transaction, so a crash
loses at most the call in flight; WAL mode lets readers in other processes proceed while one
process writes. The API key is never part of a key or a row.

Example:
    >>> cache = ResponseCache(":memory:")
    >>> key = cache_key("m", [{"role": "user", "content": "hi"}], {"temperature": 0.0})
    >>> cache.get(key) is None
    True
    >>> cache.put(key, "m", "hello", prompt_tokens=3, completion_tokens=1)
    >>> cache.get(key).text
    'hello'
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, final

__all__ = ["CachedResponse", "ResponseCache", "cache_key", "default_cache_path"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
)
"""


@dataclass(frozen=True)
@final
class CachedResponse:
    text: str
    prompt_tokens: int
    completion_tokens: int


def cache_key(model: str, messages: list[dict[str, str]], sampling: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of (model, messages, sampling); dict order never matters."""
    payload = json.dumps({"model": model, "messages": messages, "sampling": sampling}, sort_keys=True,
                         separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def default_cache_path() -> Path:
    """``$BLACKPROP_LLM_CACHE``, else ``<blackprop cache folder>/llm/responses.sqlite3``."""
    from ..data.mnist import cache_dir

    override = os.environ.get("BLACKPROP_LLM_CACHE")
    return Path(override) if override else cache_dir() / "llm" / "responses.sqlite3"


@final
class ResponseCache:
    """Thread-safe get/put of model answers in one SQLite file (``":memory:"`` for a private one)."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, busy_timeout: float = 30.0):
        self.path = str(default_cache_path() if path is None else path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(self.path, timeout=busy_timeout, check_same_thread=False,
                                           isolation_level=None)
        with self._lock:
            if self.path != ":memory:":
                self._connection.execute("PRAGMA journal_mode=WAL")
                self._connection.execute("PRAGMA synchronous=NORMAL")
            self._connection.execute(SCHEMA)

    def __repr__(self) -> str:
        return f"ResponseCache({self.path!r})"

    def get(self, key: str) -> CachedResponse | None:
        with self._lock:
            row = self._connection.execute(
                "SELECT text, prompt_tokens, completion_tokens FROM responses WHERE key = ?", (key,)
            ).fetchone()
        return None if row is None else CachedResponse(row[0], int(row[1]), int(row[2]))

    def put(self, key: str, model: str, text: str, *, prompt_tokens: int = 0, completion_tokens: int = 0) -> None:
        """Store an answer (the first answer stored for a key wins; later ones are ignored)."""
        with self._lock:
            self._connection.execute(
                "INSERT OR IGNORE INTO responses (key, model, text, prompt_tokens, completion_tokens, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (key, model, text, prompt_tokens, completion_tokens, time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._connection.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._connection.close()
