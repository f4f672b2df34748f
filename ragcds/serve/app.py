"""The HTTP API and the page: FastAPI routes over `Service`, errors as one-line JSON, optional bearer token.

Routes: POST /v1/search, POST /v1/ask, GET /v1/sections/{number}, GET /v1/health; the page at / with its
assets under /static; OpenAPI docs at /docs with Swagger UI served locally (fastapi-offline), never a CDN.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ragcds import __version__
from ragcds.errors import (
    BackendUnavailable,
    CorruptIndex,
    EmptyQuestion,
    IndexNotFound,
    ModelNotFound,
    RagcdsError,
    SectionNotFound,
    StaleIndex,
)
from ragcds.serve.engine import AskParams, Service

STATIC = Path(__file__).resolve().parent / "static"

STATUS: tuple[tuple[type[RagcdsError], int], ...] = (
    (EmptyQuestion, 400),
    (SectionNotFound, 404),
    (ModelNotFound, 503),
    (BackendUnavailable, 503),
    (IndexNotFound, 503),
    (CorruptIndex, 503),
    (StaleIndex, 503),
)
# The page and its assets: same-origin only, nothing inline, not framed.
PAGE_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}


class SearchBody(BaseModel):
    """The options of `ragcds search`."""

    model_config = ConfigDict(extra="forbid")
    question: str = Field(max_length=4000, description="The question.",
                          examples=["signs of severe malaria in children"])
    k: int = Field(5, ge=1, le=100, description="Passages to return.")
    mode: Literal["hybrid", "dense", "bm25"] = Field(
        "hybrid", description="hybrid (RRF of dense + BM25), dense or bm25."
    )


class AskBody(BaseModel):
    """The options of `ragcds ask` (the model and backend are chosen when the server starts)."""

    model_config = ConfigDict(extra="forbid")
    question: str = Field(
        max_length=4000, description="The clinical question.",
        examples=["What are the danger signs of severe malaria?"],
    )
    format: Literal["prose", "xml", "array"] = Field("prose", description="prose, xml (triage packet) or array.")
    k: int = Field(5, ge=1, le=20, description="Passages given to the model.")
    rag: bool = Field(True, description="false asks the model closed-book (no passages).")
    policy: Literal["quote", "refuse"] | None = Field(
        None, description="Treatment/dosing questions: quote the UCG verbatim, or refuse (default: the server's)."
    )
    max_new_tokens: int = Field(256, ge=1, le=4096, description="Generation budget in tokens.")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 = greedy.")


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """Every error: {"error": one line, "status": code}."""
    return JSONResponse({"error": " ".join(message.split()), "status": status}, status_code=status, headers=headers)


def status_of(exc: RagcdsError) -> int:
    return next((code for kind, code in STATUS if isinstance(exc, kind)), 400)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors():
        where = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
        parts.append(f"{where}: {e.get('msg', 'invalid')}" if where else str(e.get("msg", "invalid")))
    return "invalid request — " + "; ".join(parts) + " (see /docs for the request schema)"


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RagcdsError)
    async def _ragcds(request: Request, exc: RagcdsError) -> JSONResponse:
        return error(status_of(exc), str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette re-raises after this handler, so the server log gets the traceback; the client never does
        return error(500, f"unexpected {type(exc).__name__}: {exc} (the server log has the details)")


BEARER = HTTPBearer(auto_error=False, description="Only when the server was started with --token / RAGCDS_TOKEN.")


def bearer_check(token: str | None):
    """A dependency that requires `Authorization: Bearer TOKEN` when the server has a token."""

    def check(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> None:
        if token is None:
            return
        given = credentials.credentials if credentials else ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise StarletteHTTPException(
                401,
                "missing or wrong access token — send the header 'Authorization: Bearer TOKEN' with the token "
                "the server was started with (ragcds serve --token / RAGCDS_TOKEN)",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return check


class PageHeaders:
    """Adds PAGE_HEADERS to the page and its static assets (not to /docs, whose page has an inline script)."""

    def __init__(self, app):
        self.app = app
        self.extra = [(k.encode(), v.encode()) for k, v in PAGE_HEADERS.items()]

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != "/" and not path.startswith("/static/"):
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + self.extra
            await send(message)

        return await self.app(scope, receive, send_with_headers)


def create_app(service: Service, *, token: str | None = None, policy: str = "quote") -> FastAPI:
    """The ASGI app over a loaded `Service`. `token`: require it as a bearer token on /v1 routes."""
    from fastapi_offline import FastAPIOffline

    app = FastAPIOffline(
        title="ragcds",
        version=__version__,
        description="Cited answers from the Uganda Clinical Guidelines 2023 — decision support, not a prescriber. "
        "The same JSON as `ragcds search --json` and `ragcds ask --json`.",
        redoc_url=None,
    )
    add_error_handlers(app)
    auth = [Depends(bearer_check(token))]

    @app.post("/v1/search", dependencies=auth, summary="Search the guideline (ragcds search --json)")
    def search(body: SearchBody) -> JSONResponse:
        return JSONResponse(service.search(body.question, body.k, body.mode))

    @app.post("/v1/ask", dependencies=auth, summary="A cited answer (ragcds ask --json), written to the audit log")
    def ask(body: AskBody) -> JSONResponse:
        params = AskParams(**{**body.model_dump(), "policy": body.policy or policy})
        record, audit_id = service.ask(params)
        headers = {"x-ragcds-audit-id": str(audit_id)} if audit_id is not None else None
        return JSONResponse(record, headers=headers)

    @app.get("/v1/sections/{number}", dependencies=auth, summary="A section's text with its printed pages")
    def section(number: str) -> JSONResponse:
        return JSONResponse(service.section(number))

    @app.get("/v1/health", dependencies=auth, summary="Index version, model, uptime")
    def health() -> JSONResponse:
        return JSONResponse(service.health())

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(PageHeaders)
    return app
