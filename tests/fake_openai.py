"""A local OpenAI-compatible `/v1/chat/completions` server on 127.0.0.1 with a scripted "model" and injectable
failures, so the openai backend's HTTP, concurrency, retry and failure paths run for real without a model."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import ThreadingHTTPServer

from fake_hub import JSONHandler


class FakeChatServer:
    """``reply(messages) -> (text, finish_reason)``. A request whose last message contains a key of ``fail_first``
        gets HTTP 500 that many times first; one containing a string in ``always_fail`` gets HTTP 500 every time; one
    containing a key of ``delay`` is answered that many seconds late."""

    def __init__(self, reply: Callable[[list[dict]], tuple[str, str]]):
        self.reply = reply
        self.fail_first: dict[str, int] = {}
        self.always_fail: set[str] = set()
        self.delay: dict[str, float] = {}  # seconds to wait before answering a request containing the key
        self.requests: list[dict] = []
        self.failed: Counter = Counter()
        self.lock = threading.Lock()
        server = self

        class Handler(JSONHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                last = body["messages"][-1]["content"]
                with server.lock:
                    server.requests.append({"body": body, "headers": {k.lower(): v for k, v in self.headers.items()}})
                    fail = any(s in last for s in server.always_fail)
                    for key, times in server.fail_first.items():
                        if key in last and server.failed[key] < times:
                            server.failed[key] += 1
                            fail = True
                for key, seconds in server.delay.items():
                    if key in last:
                        time.sleep(seconds)
                if self.path != "/v1/chat/completions":
                    return self._reply(404, {"error": "not found"})
                if fail:
                    return self._reply(500, {"error": {"message": "injected failure"}})
                text, finish = server.reply(body["messages"])
                words = len(text.split())
                self._reply(
                    200,
                    {
                        "choices": [
                            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": words, "total_tokens": words + 1},
                    },
                )

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
