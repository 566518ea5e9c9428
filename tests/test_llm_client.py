"""The chat client against a real local HTTP server on 127.0.0.1: answers, 500/429/stalls/malformed
bodies, retries with backoff and Retry-After, pooled connections (counted by the server), the
on-disk cache across processes, the budget (argument or BLACKPROP_LLM_BUDGET), concurrency, the
transient/deterministic failure classes and answer parsing."""

from __future__ import annotations

import itertools
import os
import random
import socket
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
    LLMUnavailable,
    MalformedResponse,
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
    with pytest.raises(MalformedResponse, match="no answer after 2 attempts; last: malformed response body") as caught:
        stubborn.complete("A yellow fruit?")
    assert not isinstance(caught.value, ConnectionError)  # deterministic: may be memoised
    assert stubborn.stats.failures == 1 and stubborn.stats.transient_failures == 0
    assert ResponseCache(tmp_path / "cache.sqlite3").get("nothing") is None


def test_client_errors_fail_at_once(server, tmp_path):
    client = ChatClient(model="m", base_url=server.base_url.replace("/v1", "/wrong"), cache=False, backoff=0.01)
    with pytest.raises(LLMError, match="HTTP 404") as caught:
        client.complete("A red fruit?")
    assert not isinstance(caught.value, ConnectionError)
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
    assert running.connections == 2  # two pooled connections carried the eight requests


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


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_requests_reuse_one_connection(server, tmp_path):
    server.faults.append(500)
    client = make_client(server, tmp_path, concurrency=1)
    answers = [client.complete(f"A {colour} fruit?") for colour in FRUIT_OF]
    assert answers == [f"That would be a {fruit.capitalize()}." for fruit in FRUIT_OF.values()]
    assert len(server.requests) == 5 and client.stats.retries == 1
    assert server.connections == 1 and {r["connection"] for r in server.requests} == {1}
    client.close()  # a later call opens a new connection
    assert client.complete("A red fruit? Again.") == "That would be a Cherry."
    assert server.connections == 2


def test_server_errors_back_off_exponentially(server, tmp_path):
    server.faults.extend([500, 502, 503])
    client = make_client(server, tmp_path, backoff=0.05, seed=7)
    assert client.complete("A lime-green fruit? A green fruit?") == "That would be a Lime."
    arrivals = [r["time"] for r in server.requests]
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    jitter = random.Random(7)
    waits = [0.05 * 2**attempt * (0.5 + jitter.random()) for attempt in range(3)]
    assert len(gaps) == 3 and all(gap >= wait - 1e-3 for gap, wait in zip(gaps, waits, strict=True)), (gaps, waits)
    assert sum(gaps) < 5.0 and client.stats.retries == 3  # waits of 0.05 * 2**attempt, not the 60 s cap


def test_retry_after_is_kept_between_requests(server, tmp_path):
    server.faults.extend([(429, 0.3), (503, 0.2)])
    client = make_client(server, tmp_path, backoff=0.0)
    assert client.complete("A purple fruit?") == "That would be a Plum."
    arrivals = [r["time"] for r in server.requests]
    assert len(arrivals) == 3
    assert arrivals[1] - arrivals[0] >= 0.3 - 1e-3 and arrivals[2] - arrivals[1] >= 0.2 - 1e-3


def test_a_retry_after_longer_than_max_backoff_fails_transiently_without_more_requests(server, tmp_path):
    server.faults.append((429, 30))
    client = make_client(server, tmp_path, max_backoff=1.0)
    began = time.perf_counter()
    with pytest.raises(LLMUnavailable, match=r"asks to wait 30.0s \(Retry-After\), more than max_backoff=1.0s"):
        client.complete("A red fruit?")
    with pytest.raises(LLMUnavailable, match=r"rate limited for another .*no request sent"):
        client.complete("A yellow fruit?")
    assert time.perf_counter() - began < 1.0 and len(server.requests) == 1
    assert client.stats.transient_failures == 2 and client.stats.failures == 2


@pytest.mark.parametrize("faults", [[503, 503, 503], [(429, 0), (429, 0), (429, 0)]], ids=["5xx", "429"])
def test_retries_exhausted_are_a_transient_failure_and_not_cached(server, tmp_path, faults):
    server.faults.extend(faults)
    client = make_client(server, tmp_path, max_retries=2)
    with pytest.raises(LLMUnavailable, match=r"no answer after 3 attempts; last: HTTP (503|429).*transient") as caught:
        client.complete("A red fruit?")
    assert isinstance(caught.value, ConnectionError)  # the program layer does not memoise it
    assert client.stats.transient_failures == 1 and len(server.requests) == 3
    assert client.complete("A red fruit?") == "That would be a Cherry."  # asked again: answered
    assert len(server.requests) == 4


def test_unreachable_and_stalled_endpoints_are_transient(server, tmp_path):
    down = ChatClient(model="m", base_url=closed_port_url(), cache=False, backoff=0.0, max_retries=2)
    with pytest.raises(LLMUnavailable, match="no answer after 3 attempts; last: connection failed: ConnectError"):
        down.complete("A red fruit?")
    assert down.stats.requests == 3 and down.stats.transient_failures == 1

    server.faults.extend(["stall", "stall"])
    slow = make_client(server, tmp_path, timeout=0.2, max_retries=1)
    with pytest.raises(LLMUnavailable, match=r"last: timed out after 0.2s \(ReadTimeout\)") as caught:
        slow.complete("A red fruit?")
    assert isinstance(caught.value, ConnectionError)


def test_budget_is_read_from_the_environment(server, tmp_path, monkeypatch):
    monkeypatch.setenv("BLACKPROP_LLM_BUDGET", "1")
    client = make_client(server, tmp_path)
    assert client.budget == 1 and make_client(server, tmp_path, budget=3).budget == 3  # the argument wins
    client.complete("A red fruit?")
    with pytest.warns(RuntimeWarning, match="or BLACKPROP_LLM_BUDGET"), \
            pytest.raises(BudgetExhausted, match="budget of 1 requests is spent") as caught:
        client.complete("A yellow fruit?")
    assert isinstance(caught.value, ConnectionError) and isinstance(caught.value, LLMUnavailable)
    assert len(server.requests) == 1 and client.stats.budget_refusals == 1
    monkeypatch.setenv("BLACKPROP_LLM_BUDGET", "")
    assert make_client(server, tmp_path).budget is None
    for bad in ("many", "-2", "1.5"):
        monkeypatch.setenv("BLACKPROP_LLM_BUDGET", bad)
        with pytest.raises(ValueError, match=f"BLACKPROP_LLM_BUDGET='{bad}': expected a whole number"):
            make_client(server, tmp_path)


def test_budget_spent_during_retries_stops_them(server, tmp_path):
    server.faults.extend([500, 500, 500])
    client = make_client(server, tmp_path, budget=2)
    with pytest.warns(RuntimeWarning), pytest.raises(BudgetExhausted):
        client.complete("A red fruit?")
    assert len(server.requests) == 2 and client.stats.requests == 2 and client.stats.retries == 2


def test_a_cached_prompt_needs_no_endpoint(server, tmp_path):
    make_client(server, tmp_path).complete("A green fruit?")
    offline = ChatClient(model="test-model", base_url=closed_port_url(), api_key="sk-secret-123",
                         cache=tmp_path / "cache.sqlite3", backoff=0.0, max_retries=0)
    assert offline.complete("A green fruit?") == "That would be a Lime."
    assert offline.stats.requests == 0 and offline.stats.cache_hits == 1 and len(server.requests) == 1
    with pytest.raises(LLMUnavailable, match="connection failed"):
        offline.complete("A red fruit?")


def test_unparseable_answers_and_bad_urls_are_deterministic(server, tmp_path):
    with pytest.raises(UnparseableAnswer, match="names none of") as caught:
        first_mention(["kitchen"])("a garage")
    assert not isinstance(caught.value, ConnectionError)
    with pytest.raises(ValueError, match=r"base_url=...\) / OPENAI_BASE_URL: expected an http:// or https:// URL, got 'ftp://x'"):
        ChatClient(base_url="ftp://x", cache=False)
