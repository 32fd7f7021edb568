"""A real HTTP server on a free local port, standing in for a provider (an SMS gateway, a
push service, a webhook receiver). It records every request and answers what the test
says: queued replies first, then a handler function if one is set, then the default.

    with HttpPeer() as peer:
        peer.reply(201, {"id": "gw-1"})
        ...send something to peer.url...
        assert peer.requests[0].json() == {...}
"""

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    """One request the peer received."""

    method: str
    path: str  # with the query string
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self):
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        """An application/x-www-form-urlencoded body, one value per field."""
        return {name: values[-1] for name, values in parse_qs(self.body.decode()).items()}

    @property
    def route(self) -> str:
        return urlsplit(self.path).path


@dataclass
class Reply:
    status: int = 200
    json: object = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (to provoke client timeouts)

    def content(self) -> tuple[bytes, str]:
        if self.json is not None:
            return json.dumps(self.json).encode(), "application/json"
        return self.body, "text/plain"


class HttpPeer:
    def __init__(self):
        self.requests: list[Recorded] = []
        self.replies: deque[Reply] = deque()
        self.handler: Callable[[Recorded], Reply] | None = None
        self.default = Reply(200, {})
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._request_handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def reply(self, status: int = 200, json=None, **kwargs) -> None:
        """Queue the answer to the next request (answers are used in order)."""
        self.replies.append(Reply(status, json, **kwargs))

    def start(self) -> "HttpPeer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "HttpPeer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _answer(self, request: Recorded) -> Reply:
        with self.lock:
            self.requests.append(request)
            if self.replies:
                return self.replies.popleft()
        if self.handler is not None:
            return self.handler(request)
        return self.default

    def _request_handler(self):
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {name.lower(): value for name, value in self.headers.items()}
                reply = peer._answer(Recorded(self.command, self.path, headers, body))
                if reply.delay:
                    time.sleep(reply.delay)
                content, content_type = reply.content()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(content)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(content)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a timeout test)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

            def log_message(self, *args):
                pass

        return Handler
