"""A loopback "gateway" that refuses every request with a 400 whose message echoes the request line and headers.

Gateways and proxies do this; it is how a call's URL query string, its ``Authorization: Basic`` header (built by
the HTTP client from the ``api_base`` user-info) and its ``extra_headers`` reach the error message LiteLLM raises.
"""

from __future__ import annotations

import json

from loopback._loopback import LoopbackServer, QuietHandler


class _EchoHandler(QuietHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        echoed = " ".join(f"{name}: {value}" for name, value in self.headers.items())
        message = f"gateway refused {self.command} {self.path} {echoed}"
        body = json.dumps({"error": {"message": message, "type": "invalid_request_error"}}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class EchoGateway(LoopbackServer["EchoGateway"]):
    handler_class = _EchoHandler
    thread_name = "echo-gateway"
