"""A scripted OpenAI-compatible server on 127.0.0.1 for integration tests: real HTTP, replies
chosen by a function of the request's last message. Stops when its ``with`` block ends."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class OpenAIStub:
    """``with OpenAIStub(script) as stub: ... stub.base_url ...``; ``stub.requests`` keeps every
    request's last message and ``stub.headers`` its HTTP headers. Token usage is counted in words
    unless ``usage`` fixes it as ``(prompt_tokens, completion_tokens)``."""

    def __init__(self, script: Callable[[str], str], usage: tuple[int, int] | None = None):
        self.script = script
        self.requests: list[str] = []
        self.headers: list[dict[str, str]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = str(body["messages"][-1]["content"])
                stub.requests.append(prompt)
                stub.headers.append(dict(self.headers))
                reply = stub.script(prompt)
                tokens = usage or (len(prompt.split()), len(reply.split()))
                payload = json.dumps(
                    {
                        "id": f"stub-{len(stub.requests)}",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body.get("model", "stub"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": reply},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {
                            "prompt_tokens": tokens[0],
                            "completion_tokens": tokens[1],
                            "total_tokens": sum(tokens),
                        },
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):  # keep test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> OpenAIStub:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
