"""A loopback Hugging Face Hub: serves local folders as model repos to the real huggingface_hub client.

Bound to 127.0.0.1 on an ephemeral port. It answers the calls huggingface_hub makes for downloads
and access checks (file resolve HEAD/GET with X-Repo-Commit / ETag / Content-Length and Range,
``/api/models/<repo>[/revision/<rev>]``, ``/auth-check``, whoami), gates repos like the real Hub
(401 without a token, 403 for a token that has not accepted the terms, with ``X-Error-Code:
GatedRepo``), refuses a token it does not know on every request, open repos included, as the real
Hub does (401, ``X-Error-Message: Invalid credentials in Authorization header``), and can inject
faults per path: HTTP 500, a connection dropped mid-file, or a slow response. The request log
records whether a token was sent, never the token.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass
class RepoSpec:
    """One served repository: a folder (symlinks are followed), its gate and its commit hash."""

    folder: Path
    gated: bool = False
    accepted_tokens: set[str] = field(default_factory=set)
    commit: str = ""

    def __post_init__(self):
        self.folder = Path(self.folder)
        if not self.commit:
            self.commit = hashlib.sha1(str(self.folder.resolve()).encode()).hexdigest()

    def files(self) -> list[str]:
        found = []
        for root, _, names in os.walk(self.folder, followlinks=True):
            found += [(Path(root) / n).relative_to(self.folder).as_posix() for n in names]
        return sorted(found)


@dataclass
class Fault:
    kind: str  # "500", "drop" (connection closed mid-file) or "slow"
    path_glob: str
    remaining: int
    delay: float = 0.0


@dataclass
class LoggedRequest:
    method: str
    path: str
    status: int
    had_token: bool


_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
_API = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?P<rest>/.*)?$")


class HubServer:
    """Serve ``repos`` (repo id -> :class:`RepoSpec`) on 127.0.0.1 until :meth:`stop`."""

    def __init__(self, repos: dict[str, RepoSpec], known_tokens: set[str] | None = None):
        self.repos = dict(repos)
        self.known_tokens = set(known_tokens or ()) | {
            t for r in self.repos.values() for t in r.accepted_tokens
        }
        self.requests: list[LoggedRequest] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubServer:
        handler = type("Handler", (_Handler,), {"hub": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def inject_fault(self, path_glob: str, kind: str, count: int = 1, delay: float = 1.0) -> None:
        """Make the next ``count`` requests whose path matches ``path_glob`` fail in the given way."""
        if kind not in ("500", "drop", "slow"):
            raise ValueError("kind must be '500', 'drop' or 'slow'")
        with self._lock:
            self._faults.append(Fault(kind, path_glob, count, min(delay, 10.0)))

    def take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and fnmatch.fnmatch(path, fault.path_glob):
                    fault.remaining -= 1
                    return fault
        return None

    def log(self, entry: LoggedRequest) -> None:
        with self._lock:
            self.requests.append(entry)

    def count(self, method: str | None = None, contains: str = "") -> int:
        return sum(1 for r in self.requests if (method is None or r.method == method) and contains in r.path)


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output quiet
        pass

    # ---------------------------------------------------------------- helpers
    def _token(self) -> str | None:
        auth = self.headers.get("authorization", "")
        return auth[7:] if auth.lower().startswith("bearer ") else None

    def _reply(self, status: int, body: bytes = b"", headers: dict | None = None, head: bool = False):
        # Logged before answering: a client that has its answer must find its request in the log.
        self.hub.log(LoggedRequest(self.command, self.path, status, self._token() is not None))
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _error(self, status: int, code: str | None, message: str, head: bool, extra: dict | None = None):
        body = json.dumps({"error": message}).encode()
        headers = {"X-Error-Message": message, "Content-Type": "application/json"}
        if code is not None:
            headers["X-Error-Code"] = code
        self._reply(status, body, {**headers, **(extra or {})}, head)

    def _gate(self, repo_id: str, head: bool) -> RepoSpec | None:
        """The repo if this request may read it; otherwise answer like the Hub and return None."""
        spec = self.hub.repos.get(repo_id)
        if spec is None:
            self._error(404, "RepoNotFound", f"Repository Not Found for url: {repo_id}.", head)
            return None
        if not spec.gated:
            return spec
        token = self._token()
        if token is None:  # an unknown token was refused before (see _route)
            self._error(
                401,
                "GatedRepo",
                f"Access to model {repo_id} is restricted. You must have access to it and be authenticated "
                "to access it. Please log in.",
                head,
            )
            return None
        if token not in spec.accepted_tokens:
            self._error(
                403,
                "GatedRepo",
                f"Access to model {repo_id} is restricted and you are not in the authorized list. "
                f"Visit https://huggingface.co/{repo_id} to ask for access.",
                head,
            )
            return None
        return spec

    # ---------------------------------------------------------------- verbs
    def do_HEAD(self):
        self._route(head=True)

    def do_GET(self):
        self._route(head=False)

    def _route(self, head: bool):
        path = unquote(urlsplit(self.path).path)
        fault = self.hub.take_fault(path)
        if fault is not None and fault.kind == "500":
            return self._error(500, "ServerError", "Internal Error (injected)", head)
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay)
        token = self._token()
        if token is not None and token not in self.hub.known_tokens:
            return self._error(401, None, "Invalid credentials in Authorization header", head)
        if m := _RESOLVE.match(path):
            return self._resolve(
                m["repo"], m["rev"], m["file"], head, drop=fault is not None and fault.kind == "drop"
            )
        if m := _API.match(path):
            return self._api(m["repo"], m["rest"] or "", head)
        if path == "/api/whoami-v2":
            if token is not None:
                return self._reply(200, json.dumps({"name": "tester", "type": "user"}).encode(), head=head)
            return self._error(401, None, "Invalid credentials in Authorization header", head)
        return self._error(404, "NotFound", "Not Found", head)

    def _api(self, repo_id: str, rest: str, head: bool):
        spec = self._gate(repo_id, head)
        if spec is None:
            return
        if rest in ("/auth-check", ""):
            info = {"id": repo_id, "sha": spec.commit, "gated": "manual" if spec.gated else False}
            if rest == "":
                info["siblings"] = [{"rfilename": f} for f in spec.files()]
            return self._reply(200, json.dumps(info).encode(), {"Content-Type": "application/json"}, head)
        if rest.startswith("/revision/"):
            info = {"id": repo_id, "sha": spec.commit, "siblings": [{"rfilename": f} for f in spec.files()]}
            return self._reply(200, json.dumps(info).encode(), {"Content-Type": "application/json"}, head)
        if rest.startswith("/tree/"):
            entries = [
                {
                    "type": "file",
                    "path": f,
                    "size": (spec.folder / f).stat().st_size,
                    "oid": _etag(spec.folder / f),
                }
                for f in spec.files()
            ]
            return self._reply(200, json.dumps(entries).encode(), {"Content-Type": "application/json"}, head)
        return self._error(404, "NotFound", "Not Found", head)

    def _resolve(self, repo_id: str, rev: str, filename: str, head: bool, drop: bool):
        spec = self._gate(repo_id, head)
        if spec is None:
            return
        if rev not in ("main", spec.commit):
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}", head)
        target = spec.folder / filename
        if filename not in spec.files():
            return self._error(
                404,
                "EntryNotFound",
                f"{filename} does not exist on {repo_id}",
                head,
                {"X-Repo-Commit": spec.commit},
            )
        data = target.read_bytes()
        headers = {
            "X-Repo-Commit": spec.commit,
            "ETag": f'"{_etag(target)}"',
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "bytes",
        }
        status, start = 200, 0
        rng = re.match(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if rng and not head:
            start = int(rng.group(1))
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        headers["Content-Length"] = str(len(body))
        if drop and not head:
            self.hub.log(LoggedRequest(self.command, self.path, -1, self._token() is not None))
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self._reply(status, body, headers, head)


def _etag(path: Path) -> str:
    return hashlib.sha256(path.resolve().read_bytes()).hexdigest()
