"""A local stand-in for the Hub's HTTP API, on 127.0.0.1: it answers what `upload_folder` asks, and `dataset_info`
for the datasets in ``FakeHub.datasets``, and records every request, so the upload path and the pinning of Hub
datasets run for real without the network."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class JSONHandler(BaseHTTPRequestHandler):
    """A quiet request handler that answers JSON (shared by the local stand-in servers of the tests)."""

    def log_message(self, *args):
        pass

    def _reply(self, code: int, payload: dict, headers: dict | None = None):
        data = json.dumps(payload).encode()
        self.send_response(code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


# what huggingface_hub asks of any endpoint for itself, whatever the call (2.4: the agent harnesses it knows):
# not a request of corpusforge's, so not a call the tests count
CLIENT_HOUSEKEEPING = ("/api/agent-harnesses",)


class FakeHub:
    def __init__(self):
        self.calls: list[dict] = []
        self.datasets: dict[str, str] = {}  # dataset repo → the commit sha its main branch points at
        hub = self

        class Handler(JSONHandler):
            def _record(self, body: bytes):
                if self.path.split("?")[0] in CLIENT_HOUSEKEEPING:
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                hub.calls.append({"method": self.command, "path": self.path, "headers": headers, "body": body})

            def do_GET(self):
                self._record(b"")
                if "/discussions/" in self.path:  # the pull request opened by a POST to .../discussions
                    repo = self.path.split("/api/datasets/")[1].split("/discussions/")[0]
                    return self._reply(200, hub.pull_request(repo))
                if self.path.startswith("/api/datasets/"):  # dataset_info(repo, revision=…)
                    repo, _, revision = self.path.split("?")[0].removeprefix("/api/datasets/").partition("/revision/")
                    sha = hub.datasets.get(repo)
                    if sha is None:
                        return self._reply(404, {"error": "no such repo"}, {"X-Error-Code": "RepoNotFound"})
                    if revision not in ("", "main", sha):
                        return self._reply(404, {"error": "no such revision"}, {"X-Error-Code": "RevisionNotFound"})
                    return self._reply(200, {"id": repo, "sha": sha, "private": False, "siblings": []})
                self._reply(404, {"error": "not found"})

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._record(body)
                host = self.headers.get("Host")
                if self.path.startswith("/api/repos/create"):
                    request = json.loads(body)
                    return self._reply(
                        200, {"url": f"http://{host}/datasets/{request['organization']}/{request['name']}"}
                    )
                if self.path.endswith("/discussions"):
                    hub.pr_title = json.loads(body)["title"]
                    return self._reply(200, {"num": 1})
                if self.path.startswith("/api/validate-yaml"):
                    return self._reply(200, {"errors": [], "warnings": []})
                if "/preupload/" in self.path:
                    files = json.loads(body)["files"]
                    return self._reply(
                        200,
                        {
                            "files": [
                                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files
                            ]
                        },
                    )
                if "/commit/" in self.path:
                    repo = self.path.split("/api/datasets/")[1].split("/commit/")[0]
                    return self._reply(
                        200, {"commitUrl": f"http://{host}/datasets/{repo}/commit/{'a' * 40}", "commitOid": "a" * 40}
                    )
                self._reply(404, {"error": f"unexpected {self.path}"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    pr_title = ""

    def pull_request(self, repo: str) -> dict:
        """Discussion 1 of ``repo`` as the Hub describes a pull request (the fields huggingface_hub reads)."""
        return {
            "title": self.pr_title,
            "num": 1,
            "author": {"name": "corpusforge-test"},
            "createdAt": "2026-01-01T00:00:00.000Z",
            "status": "draft",
            "repo": {"name": repo, "type": "dataset"},
            "isPullRequest": True,
            "events": [],
            "changes": {"base": "refs/heads/main"},
            "filesWithConflicts": [],
        }

    def commits(self) -> list[list[dict]]:
        """Each commit as its list of ndjson operations."""
        return [
            [json.loads(line) for line in c["body"].splitlines() if line.strip()]
            for c in self.calls
            if "/commit/" in c["path"]
        ]

    def close(self):
        self.server.shutdown()
