"""The chat client against a real local HTTP server on 127.0.0.1: answers, 500/429/stalls/malformed
bodies, retries, the on-disk cache across processes, the budget, concurrency and answer parsing."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from blackprop.llm import (
    BudgetExhausted,
    ChatClient,
    LLMError,
    MissingEndpoint,
    ResponseCache,
    UnparseableAnswer,
    first_mention,
    llm_program,
)
from blackprop.llm.local_server import LocalChatServer
from blackprop.spaces import Discrete

SRC = str(Path(__file__).resolve().parents[1] / "src")
COLOURS = Discrete(["red", "yellow", "green", "purple"])
FRUITS = Discrete(["cherry", "banana", "lime", "plum"])
FRUIT_OF = {"red": "cherry", "yellow": "banana", "green": "lime", "purple": "plum"}


def fruit_responder(messages: list[dict[str, str]]) -> str:
    prompt = messages[-1]["content"]
    for colour, fruit in FRUIT_OF.items():
        if f"A {colour} fruit" in prompt:
            return f"That would be a {fruit.capitalize()}."
    return "No idea, sorry."


@pytest.fixture
def server():
    with LocalChatServer(fruit_responder, stall_seconds=1.0) as running:
        yield running


def make_client(server: LocalChatServer, tmp_path: Path, **settings) -> ChatClient:
    settings.setdefault("backoff", 0.01)
    settings.setdefault("timeout", 5.0)
    return ChatClient(model="test-model", base_url=server.base_url, api_key="sk-secret-123",
                      cache=tmp_path / "cache.sqlite3", **settings)


def test_answers_and_a_repeated_prompt_costs_no_second_call(server, tmp_path):
    client = make_client(server, tmp_path)
    assert client.complete("A red fruit?") == "That would be a Cherry."
    assert client.complete("A red fruit?") == "That would be a Cherry."
    assert len(server.requests) == 1
    assert client.stats.calls == 2 and client.stats.cache_hits == 1 and client.stats.requests == 1
    assert client.stats.prompt_tokens == 3 and client.stats.completion_tokens == 5
    assert server.requests[0]["model"] == "test-model" and server.requests[0]["authorized"]


def test_cache_key_covers_model_and_sampling(server, tmp_path):
    make_client(server, tmp_path).complete("A red fruit?")
    make_client(server, tmp_path, temperature=0.7).complete("A red fruit?")
    ChatClient(model="other-model", base_url=server.base_url, cache=tmp_path / "cache.sqlite3").complete("A red fruit?")
    make_client(server, tmp_path).complete("A red fruit?")
    assert len(server.requests) == 3


def test_the_key_is_never_stored_or_shown(server, tmp_path):
    client = make_client(server, tmp_path)
    client.complete("A green fruit?")
    assert "sk-secret-123" not in repr(client)
    for path in tmp_path.iterdir():
        assert b"sk-secret-123" not in path.read_bytes()


def test_server_errors_are_retried(server, tmp_path):
    server.faults.extend([500, 503])
    client = make_client(server, tmp_path)
    assert client.complete("A yellow fruit?") == "That would be a Banana."
    assert len(server.requests) == 3
    assert client.stats.retries == 2 and client.stats.failures == 0


def test_rate_limit_honours_retry_after(server, tmp_path):
    server.faults.append((429, 0.4))
    client = make_client(server, tmp_path, backoff=0.0)
    began = time.perf_counter()
    assert client.complete("A purple fruit?") == "That would be a Plum."
    assert time.perf_counter() - began >= 0.4
    assert client.stats.retries == 1 and len(server.requests) == 2


def test_a_stalled_request_times_out_and_is_retried(server, tmp_path):
    server.faults.append("stall")
    client = make_client(server, tmp_path, timeout=0.3)
    began = time.perf_counter()
    assert client.complete("A red fruit?") == "That would be a Cherry."
    assert client.stats.retries == 1
    assert time.perf_counter() - began < 1.0  # did not wait for the stalled answer


def test_malformed_bodies_are_retried_then_fail_cleanly(server, tmp_path):
    server.faults.extend(["malformed", "no-choices"])
    client = make_client(server, tmp_path)
    assert client.complete("A green fruit?") == "That would be a Lime."
    assert client.stats.retries == 2

    server.faults.extend(["malformed", "malformed"])
    stubborn = make_client(server, tmp_path, max_retries=1)
    with pytest.raises(LLMError, match="no answer after 2 attempts; last: malformed response body"):
        stubborn.complete("A yellow fruit?")
    assert stubborn.stats.failures == 1
    assert ResponseCache(tmp_path / "cache.sqlite3").get("nothing") is None


def test_client_errors_fail_at_once(server, tmp_path):
    client = ChatClient(model="m", base_url=server.base_url.replace("/v1", "/wrong"), cache=False, backoff=0.01)
    with pytest.raises(LLMError, match="HTTP 404"):
        client.complete("A red fruit?")
    assert client.stats.requests == 1 and client.stats.retries == 0


def test_missing_endpoint_is_a_clear_error(monkeypatch):
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(MissingEndpoint, match="set OPENAI_BASE_URL"):
        ChatClient(cache=False)


def test_budget_stops_cleanly(server, tmp_path):
    client = make_client(server, tmp_path, budget=2)
    client.complete("A red fruit?")
    client.complete("A yellow fruit?")
    with pytest.warns(RuntimeWarning, match="budget of 2 requests is spent"), pytest.raises(BudgetExhausted):
        client.complete("A green fruit?")
    assert client.complete("A red fruit?") == "That would be a Cherry."  # cached answers still work
    assert client.stats.budget_refusals == 1 and len(server.requests) == 2


def test_budget_in_a_program_gives_counted_failed_samples(server, tmp_path):
    client = make_client(server, tmp_path, budget=2, concurrency=1)
    program = llm_program(client, inputs=(COLOURS,), output=FRUITS, prompt=lambda c: f"A {c} fruit?")
    with pytest.warns(RuntimeWarning):
        out = program.evaluate(torch.tensor([[0], [1], [2], [3]]))
    assert (out >= 0).sum() == 2 and (out == -1).sum() == 2
    assert program.stats.failures == 2 and client.stats.budget_refusals == 2


def test_program_parses_answers_and_counts_unparseable_ones(server, tmp_path):
    client = make_client(server, tmp_path)
    prompts = {"red": "A red fruit?", "yellow": "A yellow fruit?", "green": "Something green?", "purple": "A purple fruit?"}
    program = llm_program(client, inputs=(COLOURS,), output=FRUITS, prompt=lambda c: prompts[c], name="fruit")
    with pytest.warns(RuntimeWarning, match="names none of"):
        out = program.evaluate(torch.tensor([[0], [1], [2], [3], [0]]))
    assert out.tolist() == [0, 1, -1, 3, 0]
    assert client.stats.parse_failures == 1 and program.stats.failures == 1
    assert len(server.requests) == 4  # the repeated tuple was not asked twice


def test_first_mention_is_deterministic():
    parse = first_mention(["lab", "living", "dining"], aliases={"living": ["living room"], "lab": ["laboratory"]})
    assert parse("A Living Room, or perhaps a laboratory.") == "living"
    assert parse("laboratory first, then the living room") == "lab"
    assert parse("label printer in a dining area") == "dining"  # 'lab' inside 'label' is no mention
    with pytest.raises(UnparseableAnswer, match="names none of"):
        parse("a garage")


def test_concurrency_limit(tmp_path):
    in_flight, peak, lock = [0], [0], threading.Lock()

    def slow(messages):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.15)
        with lock:
            in_flight[0] -= 1
        return fruit_responder(messages)

    with LocalChatServer(slow) as running:
        client = ChatClient(model="m", base_url=running.base_url, cache=False, concurrency=2)
        program = llm_program(client, inputs=(COLOURS, COLOURS), output=FRUITS, prompt=lambda a, b: f"A {a} fruit? {b}")
        out = program.evaluate(torch.tensor([[a, b] for a in range(4) for b in range(2)]))
    assert (out >= 0).all()
    assert peak[0] == 2 and len(running.requests) == 8


CHILD = """
import sys
from blackprop.llm import ChatClient
client = ChatClient(model="test-model", base_url=sys.argv[1], api_key="sk-secret-123", cache=sys.argv[2])
print(client.complete(sys.argv[3]))
print(client.stats.requests, client.stats.cache_hits)
"""


def run_child(server: LocalChatServer, cache: Path, prompt: str) -> list[str]:
    result = subprocess.run([sys.executable, "-c", CHILD, server.base_url, str(cache), prompt], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "PYTHONPATH": SRC})
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()


def test_cache_is_shared_across_processes(server, tmp_path):
    cache = tmp_path / "cache.sqlite3"
    make_client(server, tmp_path).complete("A red fruit?")
    assert run_child(server, cache, "A red fruit?") == ["That would be a Cherry.", "0 1"]
    assert len(server.requests) == 1
    assert run_child(server, cache, "A yellow fruit?") == ["That would be a Banana.", "1 0"]
    assert make_client(server, tmp_path).complete("A yellow fruit?") == "That would be a Banana."
    assert len(server.requests) == 2
