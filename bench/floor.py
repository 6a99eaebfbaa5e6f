"""The floor: a raw-ASGI app that reads the body and returns one fixed AdmissionReview response.

It does no JSON work at all, so its throughput is what uvicorn (httptools + uvloop) and TLS
cost per request on this machine; every server in the benchmark is compared to it.

Run: python -m bench.floor --port P --cert-dir DIR --answer BODY_BYTES:FILE [--answer ...]
Each answer file is sent as is to requests whose body has BODY_BYTES bytes (the first one to
any other body). The bench passes the exact bytes our server answers for each fixture, so the
floor sends as many bytes back and passes the same verification, without parsing anything.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import uvicorn

from webhook.server.tls import build_server_context


def _messages(response: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    start = {"type": "http.response.start", "status": 200,
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(response)).encode())]}
    return start, {"type": "http.response.body", "body": response}


class FloorApp:
    def __init__(self, answers: dict[int, bytes]) -> None:
        self.answers = {size: _messages(body) for size, body in answers.items()}
        self.default = next(iter(self.answers.values()))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        more, size = True, 0
        while more:  # read the whole request body, as any real handler must
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        start, body = self.answers.get(size, self.default)
        await send(start)
        await send(body)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert-dir", type=Path, required=True)
    parser.add_argument("--answer", action="append", required=True, metavar="BODY_BYTES:FILE")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    cert, key = args.cert_dir / "tls.crt", args.cert_dir / "tls.key"
    answers = {}
    for item in args.answer:
        size, _, path = item.partition(":")
        answers[int(size)] = Path(path).read_bytes()
    app = FloorApp(answers)
    # The same settings as `sidecar-injector serve` (webhook/server.py): httptools + uvloop,
    # the same hardened TLS context and certificate, no access log, no server header.
    config = uvicorn.Config(
        app, host=args.host, port=args.port, http="httptools", loop="uvloop", lifespan="off",
        log_level="warning", access_log=False, server_header=False, workers=args.workers,
        ssl_context_factory=lambda _config, _default: build_server_context(cert, key),
        timeout_keep_alive=30, limit_concurrency=512,
    )
    print(f"floor pid {os.getpid()} on {args.host}:{args.port}", flush=True)
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
