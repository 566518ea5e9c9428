"""A local OpenAI-compatible chat server on 127.0.0.1, for tests and offline demos.

``LocalChatServer(responder)`` answers ``POST /v1/chat/completions`` with ``responder(messages)``
in a background thread on a free port. ``faults`` is a queue of scripted misbehaviours consumed
one per request before normal answers resume:

* ``500`` / ``503``: a server error;  ``(429, seconds)``: rate limited with ``Retry-After``
  (any ``(status, seconds)`` answers that status with that ``Retry-After``);
* ``"stall"``: sleep ``stall_seconds`` before answering (past a client's timeout);
* ``"malformed"``: a body that is not JSON;  ``"no-choices"``: JSON without ``choices``.

Every request is logged in ``requests`` (the user prompt, the model, whether a key was sent, the
number of the connection it came on); ``connections`` counts the TCP connections accepted. The
server speaks HTTP/1.1 with keep-alive, so a pooling client sends many requests over one connection.

Example:
    >>> with LocalChatServer(lambda messages: "kitchen") as server:      # doctest: +SKIP
    ...     ChatClient(base_url=server.base_url, model="m", cache=False).complete("Room?")
    'kitchen'

Run ``python -m blackprop.llm.local_server --port 8000`` for a scripted stand-in model that
answers the leaf prompts with the decision tree and the scene prompts with the offline
embedding program (a demo endpoint, not a language model).
"""

from __future__ import annotations

import argparse
import collections
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, final

__all__ = ["LocalChatServer"]

Responder = Callable[[list[dict[str, str]]], str]


@final
class LocalChatServer:
    """An OpenAI-compatible chat-completions server on loopback; a context manager."""

    def __init__(self, responder: Responder, *, host: str = "127.0.0.1", port: int = 0, stall_seconds: float = 2.0):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"LocalChatServer(host=...): only loopback addresses are allowed, got {host!r}")
        self.responder = responder
        self.stall_seconds = stall_seconds
        self.faults: collections.deque[Any] = collections.deque()
        self.requests: list[dict[str, Any]] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> LocalChatServer:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def prompts(self) -> list[str]:
        with self._lock:
            return [r["prompt"] for r in self.requests]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: one handler per connection, many requests
            timeout = 30.0  # an idle kept-alive connection is closed after this many seconds
            disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK stall

            def setup(self) -> None:
                super().setup()
                with server._lock:
                    server.connections += 1
                    self.connection_number = server.connections

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                    messages = body["messages"]
                except (ValueError, KeyError):
                    self._send(400, {"error": {"message": "body must be JSON with messages"}})
                    return
                prompt = "\n".join(m.get("content", "") for m in messages if m.get("role") == "user")
                with server._lock:
                    server.requests.append({"prompt": prompt, "model": body.get("model"),
                                            "authorized": "Authorization" in self.headers, "time": time.time(),
                                            "connection": self.connection_number})
                    fault = server.faults.popleft() if server.faults else None
                if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                if isinstance(fault, tuple):
                    self._send(fault[0], {"error": {"message": "rate limited"}}, {"Retry-After": str(fault[1])})
                    return
                if isinstance(fault, int):
                    self._send(fault, {"error": {"message": "scripted failure"}})
                    return
                if fault == "stall":
                    time.sleep(server.stall_seconds)
                if fault == "malformed":
                    self._send_raw(200, b"{this is not json")
                    return
                if fault == "no-choices":
                    self._send(200, {"id": "x", "object": "chat.completion"})
                    return
                text = server.responder(messages)
                self._send(200, {
                    "id": "local", "object": "chat.completion", "model": body.get("model"),
                    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split()),
                              "total_tokens": len(prompt.split()) + len(text.split())},
                })

            def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                self._send_raw(status, json.dumps(payload).encode(), headers)

            def _send_raw(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (e.g. its timeout passed)

        return Handler


def scripted_responder(messages: list[dict[str, str]]) -> str:
    """Answers the leaf prompts with the decision tree and the scene prompts with the embedding program."""
    from ..tasks import leaf, scene

    prompt = "\n".join(m["content"] for m in messages if m["role"] == "user")
    features = leaf.features_in_prompt(prompt)
    if features is not None:
        return f"{leaf.decision_tree(*features)}."
    objects = scene.objects_in_prompt(prompt)
    if objects is not None:
        room = scene.embedding_room_namer()(objects)
        return f"Most likely a {scene.ROOM_TEXT[room]}." if room else "I cannot tell."
    return "I do not know."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A scripted OpenAI-compatible endpoint on 127.0.0.1 (demo only).")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    server = LocalChatServer(scripted_responder, port=args.port)
    print(f"serving on {server.base_url}; export OPENAI_BASE_URL={server.base_url}", flush=True)
    server.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
