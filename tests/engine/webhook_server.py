"""A real downstream service implementing docs/webhook-protocol.md, for the tests.

It serves HTTP on 127.0.0.1 (a free port) from a thread, keeps its records in memory, verifies
every call's signature with `verify_signature` and answers 401 when it does not hold. Tests can
make it slow (`delay`), fail (`fail_with`), page in small steps (`max_page`), or answer an erasure
as pending (`pending_erase`).

    with WebhookService(secret, {"tickets": [{"id": 1, "email": "ada@example.com"}]}) as service:
        connector = connector_for("webhook", service.url, ..., options={"secret": secret, ...})
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from requests.connectors.webhook import verify_signature


def _normal(value: Any) -> str:
    # The service compares values as trimmed, case-insensitive text, as the protocol advises for
    # emails; ids compare the same way whether sent as numbers or strings.
    return str(value).strip().lower()


class WebhookService:
    def __init__(self, secret: str, records: dict[str, list[dict[str, Any]]] | None = None):
        self.secret = secret
        self.records = {name: list(rows) for name, rows in (records or {}).items()}
        self.delay = 0.0
        self.fail_with: int | None = None
        self.answer_raw: bytes | None = None  # sent as is with 200 instead of the protocol answer
        self.max_page = 1000
        self.pending_erase = False
        self.calls: list[dict[str, Any]] = []  # every call received, with `signature_ok`
        self.jobs: dict[str, dict[str, Any]] = {}
        # (request_id, collection) -> the answer given: repeats get it again.
        self.erasures: dict[tuple[str, str | None], tuple[int, Any]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> WebhookService:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, answer = service.handle(
                    body,
                    self.headers.get("X-Portal-Timestamp"),
                    self.headers.get("X-Portal-Signature"),
                    host=self.headers.get("Host"),
                )
                raw = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the timeout tests)

            def log_message(self, *args) -> None:
                pass  # keep the test output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A short poll interval makes shutdown quick at the end of each test.
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc_info) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/portal-hook"

    # -- the protocol -------------------------------------------------------------------------

    def handle(self, body: bytes, timestamp, signature, host=None) -> tuple[int, Any]:
        signature_ok = verify_signature(self.secret, timestamp, body, signature, time.time())
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        with self._lock:
            self.calls.append({"payload": payload, "signature_ok": signature_ok, "host": host})
        if self.delay:
            time.sleep(self.delay)
        if not signature_ok:
            return 401, {"error": "bad signature"}
        if self.fail_with:
            return self.fail_with, {"error": "failing on purpose"}
        if self.answer_raw is not None:
            return 200, self.answer_raw
        if not isinstance(payload, dict):
            return 400, {"error": "the body is not a JSON object"}
        action = payload.get("action")
        if action == "ping":
            return 200, {"status": "ok", "collections": sorted(self.records)}
        if action == "find":
            return self._find(payload)
        if action == "erase":
            return self._erase(payload)
        if action == "status":
            job = self.jobs.get(payload.get("job"))
            if job is None:
                return 404, {"error": "unknown job"}
            return 200, job
        return 400, {"error": "unknown action"}

    def _matching(self, collection: str, field: str | None, identities: dict) -> list[dict]:
        wanted = {_normal(v) for values in identities.values() for v in values}
        fields = [field] if field else list(identities)
        return [
            row
            for row in self.records.get(collection, [])
            if any(_normal(row.get(f)) in wanted for f in fields if row.get(f) is not None)
        ]

    def _find(self, payload: dict) -> tuple[int, Any]:
        collection = payload["collection"]
        if collection not in self.records:
            return 404, {"error": "unknown collection"}
        rows = self._matching(collection, payload.get("field"), payload["identities"])
        start = int(payload.get("cursor") or 0)
        limit = min(int(payload.get("limit") or 100), self.max_page)
        page = rows[start : start + limit]
        following = start + limit
        return 200, {
            "records": [{"collection": collection, "data": row} for row in page],
            "next_cursor": str(following) if following < len(rows) else None,
        }

    def _erase(self, payload: dict) -> tuple[int, Any]:
        # Idempotent per request and collection, as the protocol says: a repeat gets the first
        # call's answer and erases nothing more; another collection of the request is new work.
        collection = payload.get("collection")
        with self._lock:
            first = self.erasures.get((payload["request_id"], collection))
            if first is not None:
                return first
            names = [collection] if collection else list(self.records)
            erased = 0
            for name in names:
                doomed = self._matching(name, None, payload["identities"])
                self.records[name] = [r for r in self.records.get(name, []) if r not in doomed]
                erased += len(doomed)
            job = f"job-{payload['request_id']}" + (f"-{collection}" if collection else "")
            self.jobs[job] = {"status": "done", "erased": erased}
            if self.pending_erase:
                answer = (202, {"status": "pending", "erased": 0, "job": job})
            else:
                answer = (200, {"status": "done", "erased": erased, "job": job})
            self.erasures[(payload["request_id"], collection)] = answer
            return answer
