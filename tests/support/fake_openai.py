"""A local OpenAI-compatible `/v1/chat/completions` server on 127.0.0.1 with a scripted "model" and injectable
failures, so the openai backend's HTTP, concurrency, retry and failure paths run for real without a model."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from urllib.parse import urlsplit

from tests.support.fake_hub import JSONHandler

# What ``FakeChatServer.faults`` can script, each a transient fault of a real endpoint or proxy:
FAULTS = {
    "null": 'HTTP 200 with "content": null',
    "empty": 'HTTP 200 with "content": "" and no completion token',
    "500": "HTTP 500",
    "503": "HTTP 503",
    "429": "HTTP 429 with Retry-After: ``retry_after`` seconds",
    "truncated": "HTTP 200 whose JSON body is cut in half (its Content-Length says so: the body is bad, not short)",
    "cut": "HTTP 200 whose connection closes halfway through the announced Content-Length",
}


class FakeChatServer:
    """``reply(messages) -> (text, finish_reason)``. A request whose last message contains a key of ``fail_first``
    gets HTTP 500 that many times first; one containing a string in ``always_fail`` gets HTTP 500 every time; one
    containing a key of ``delay`` is answered that many seconds late. One containing a key of ``faults`` gets those
    faults (names of ``FAULTS``), one per request, in order, and is answered after them. One containing a string in
    ``echo`` gets ``echo_status`` with a body that quotes the request's Authorization header and its path with the
    query (as some proxies do to say which key was refused)."""

    def __init__(self, reply: Callable[[list[dict]], tuple[str, str]]):
        self.reply = reply
        self.fail_first: dict[str, int] = {}
        self.always_fail: set[str] = set()
        self.delay: dict[str, float] = {}  # seconds to wait before answering a request containing the key
        self.faults: dict[str, list[str]] = {}
        self.retry_after = "0"
        self.echo: set[str] = set()
        self.echo_status = 401
        self.requests: list[dict] = []  # body, headers (lower-case names), path, time (monotonic), fault
        self.failed: Counter = Counter()
        self.lock = threading.Lock()
        server = self

        class Handler(JSONHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                last = body["messages"][-1]["content"]
                headers = {k.lower(): v for k, v in self.headers.items()}
                with server.lock:
                    fail = any(s in last for s in server.always_fail)
                    for key, times in server.fail_first.items():
                        if key in last and server.failed[key] < times:
                            server.failed[key] += 1
                            fail = True
                    fault = next((f.pop(0) for key, f in server.faults.items() if key in last and f), None)
                    echo = any(s in last for s in server.echo)
                    server.requests.append(
                        {"body": body, "headers": headers, "path": self.path, "time": time.monotonic(), "fault": fault}
                    )
                for key, seconds in server.delay.items():
                    if key in last:
                        time.sleep(seconds)
                if urlsplit(self.path).path != "/v1/chat/completions":
                    return self._reply(404, {"error": "not found"})
                if echo:
                    quoted = f"Authorization: {headers.get('authorization')}; request: POST {self.path}"
                    return self._reply(server.echo_status, {"error": {"message": f"refused ({quoted})"}})
                if fail or fault in ("500", "503"):
                    return self._reply(int(fault or 500), {"error": {"message": "injected failure"}})
                if fault == "429":
                    return self._send(
                        429, json.dumps({"error": {"message": "slow down"}}).encode(), server.retry_after
                    )
                text, finish = server.reply(body["messages"])
                if fault in ("null", "empty"):
                    text = None if fault == "null" else ""
                words = len(text.split()) if text else 0
                payload = {
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
                    ],
                    "usage": {"prompt_tokens": 1, "completion_tokens": words, "total_tokens": words + 1},
                }
                if fault in ("truncated", "cut"):
                    data = json.dumps(payload).encode()
                    return self._send(200, data[: len(data) // 2], announced=len(data) if fault == "cut" else None)
                self._reply(200, payload)

            def _send(self, code: int, data: bytes, retry_after: str | None = None, announced: int | None = None):
                """A JSON reply with a Retry-After header, or one that announces more bytes than it sends."""
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(announced or len(data)))
                if retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                if announced:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
