"""The playground's web app (Starlette): the JSON API under /api and the page in static/.

    GET  /api/model      the model card, the request limits and the default settings
    POST /api/tokenize   {"prompt": …} -> the prompt's tokens (text pieces and ids)
    POST /api/generate   generate.py's settings -> JSON lines, one event per token as it is drawn
    POST /api/attention  {"prompt": … or "ids": […], "position": …} -> weights[layer][head][key]

A refused request is answered with a 4xx and {"error": "<one sentence>"}; a full line of
waiting requests with 503 and Retry-After. A client that leaves during a generation stops its
decoding loop: the stream watches for the disconnect and tells the model's thread to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tinylm.serve.model_queue import ModelQueue, QueueFull
from tinylm.serve.playground import Playground
from tinylm.serve.requests import (
    AttentionRequest,
    BadRequest,
    GenerateRequest,
    TokenizeRequest,
    parse,
)
from tinylm.serve.requests import (
    Request as RequestBody,
)

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
ENDPOINTS = "GET /api/model, POST /api/tokenize, POST /api/generate and POST /api/attention"
# The page loads nothing from elsewhere: no CDN, and it works offline.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:",
    "X-Content-Type-Options": "nosniff",
}
END = None  # after the last event of a stream


def create_app(playground: Playground, allowed_hosts: list[str]) -> Starlette:
    """The app for `playground`, answering requests addressed to `allowed_hosts` only (a web
    page elsewhere cannot reach a local server through a DNS name of its own)."""
    queue = ModelQueue(playground.limits.waiting)
    limits = playground.limits

    def busy() -> JSONResponse:
        return JSONResponse(
            {"error": f"The model is busy with {queue.capacity} requests; try again in a few "
                      "seconds."},
            status_code=503, headers={"Retry-After": str(limits.retry_after_s)},
        )  # fmt: skip

    async def body(request: Request, model: type[RequestBody]) -> RequestBody:
        """The request's JSON body as `model`, read no further than the size limit."""
        data = bytearray()
        try:
            async for chunk in request.stream():
                data += chunk
                if len(data) > limits.max_body_bytes:
                    raise BadRequest(
                        f"The request body is larger than {limits.max_body_bytes:,} bytes; "
                        "send a shorter prompt.",
                        status=413,
                    )
        except ClientDisconnect:
            raise BadRequest("The client left before sending its request.") from None
        return parse(model, bytes(data))

    async def model_card(request: Request) -> JSONResponse:
        return JSONResponse(playground.card())

    async def tokenize(request: Request) -> JSONResponse:
        tokenize_request = await body(request, TokenizeRequest)
        return JSONResponse(playground.tokenize(tokenize_request.prompt))

    async def attention(request: Request) -> JSONResponse:
        ids, position = playground.attention_ids(await body(request, AttentionRequest))
        try:
            future = queue.submit(playground.attention, ids, position)
        except QueueFull:
            return busy()
        return JSONResponse(await asyncio.wrap_future(future))

    async def generate(request: Request) -> StreamingResponse | JSONResponse:
        generation = playground.generation(await body(request, GenerateRequest))
        stream = EventStream()
        try:
            queue.submit(stream.produce, playground.generate(generation))
        except QueueFull:
            return busy()
        return stream

    async def refused(request: Request, error: BadRequest) -> JSONResponse:
        return JSONResponse({"error": error.message}, status_code=error.status)

    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        message = {
            404: f"There is no {request.url.path} here; the API is {ENDPOINTS}.",
            405: f"{request.method} is not accepted at {request.url.path}; the API is {ENDPOINTS}.",
        }.get(error.status_code, f"{error.detail}.")
        return JSONResponse({"error": message}, status_code=error.status_code)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        queue.close()

    app = Starlette(
        routes=[
            # A Mount of its own: a wrong method under /api is a 405, not the page's 404.
            Mount(
                "/api",
                routes=[
                    Route("/model", model_card, methods=["GET"]),
                    Route("/tokenize", tokenize, methods=["POST"]),
                    Route("/generate", generate, methods=["POST"]),
                    Route("/attention", attention, methods=["POST"]),
                ],
            ),
            Mount("/", StaticFiles(directory=STATIC, html=True)),
        ],
        middleware=[
            Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts),
            Middleware(SecurityHeaders),
        ],
        exception_handlers={BadRequest: refused, HTTPException: http_error},
        lifespan=lifespan,
    )
    return app


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every response (plain ASGI: a stream passes through as it is)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(SECURITY_HEADERS)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class EventStream(StreamingResponse):
    """JSON lines, one per event, produced on the model's thread (produce) and sent from the
    event loop as they come: events that arrived together go out in one write."""

    media_type = "application/x-ndjson"

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.events: asyncio.Queue[dict | None] = asyncio.Queue()
        self.stop = threading.Event()  # set when the client leaves
        super().__init__(self.lines(), headers={"Cache-Control": "no-store"})

    def produce(self, events: Iterator[dict]) -> None:
        """On the model's thread: pass each event to the event loop until the client leaves."""
        sent = 0
        try:
            with contextlib.closing(events):  # closing it stops the decoding loop inside
                for event in events:
                    if self.stop.is_set():
                        log.info(f"The client left after {sent} events; decoding stopped.")
                        break
                    self.loop.call_soon_threadsafe(self.events.put_nowait, event)
                    sent += 1
        except Exception as error:  # a bug: the client is told, the server goes on
            log.exception("A generation failed.")
            failed = {"type": "error", "error": f"The generation failed ({error})."}
            self.loop.call_soon_threadsafe(self.events.put_nowait, failed)
        finally:
            self.loop.call_soon_threadsafe(self.events.put_nowait, END)

    async def lines(self) -> AsyncIterator[bytes]:
        while True:
            batch = [await self.events.get()]
            while not self.events.empty():
                batch.append(self.events.get_nowait())
            done = batch[-1] is END
            events = batch[:-1] if done else batch
            if events:
                yield "".join(json.dumps(event) + "\n" for event in events).encode()
            if done:
                return

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def watch_for_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            self.stop.set()

        watcher = asyncio.create_task(watch_for_disconnect())
        try:
            await self.stream_response(send)
        except OSError:  # the client left while an event was on its way
            pass
        finally:
            self.stop.set()
            watcher.cancel()
