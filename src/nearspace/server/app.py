"""The FastAPI application: routes, error shape, auth and body-size guard, the page.

Built by ``create_app(config)``; ``nearspace serve`` runs it on uvicorn. Annotations here
are evaluated eagerly (no ``from __future__ import annotations``) because the request
models are built per app, with this server's limits, and FastAPI reads them from the
route signatures.
"""
import asyncio
import base64
import hmac
import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Literal, Optional

import numpy as np
from fastapi import FastAPI, Path as PathParam, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nearspace.encoders.base import normalize_rows
from nearspace.encoders.registry import canonical_name
from nearspace.errors import LimitError, NearspaceError, StoreError, http_status
from nearspace.server.config import ServerConfig, host_allow_list, host_of
from nearspace.server.engine import Engine
from nearspace.server.schemas import (COLLECTION_NAME, WHERE_SCHEMA, AskResponse, CollectionsResponse, MapResponse, DeleteResponse, DocumentOut, EmbeddingsResponse,
                                      ErrorResponse, Health, ModelList, Model, SearchResponse, WriteResponse,
                                      request_models)

STATIC = Path(__file__).resolve().parent / "static"
log = logging.getLogger("nearspace.server")

#: paths anyone may fetch when a key is set: the health probe and the page (which asks for the key)
PUBLIC_PATHS = frozenset({"/health", "/"})
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 421: "invalid_request_error",
               405: "invalid_request_error", 409: "conflict_error", 413: "request_too_large",
               415: "invalid_request_error", 422: "invalid_request_error", 503: "service_unavailable"}


class ApiError(Exception):
    """An error answered as ``{"error": {...}}`` with ``status``."""

    def __init__(self, status: int, message: str, *, type: str | None = None, param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.type = type or ERROR_TYPES.get(status, "invalid_request_error")


def error_body(status: int, message: str, *, type: str | None = None, param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type or ERROR_TYPES.get(status, "server_error"),
                      "param": param, "code": code}}


# -- auth and body-size guard (runs before any body is read) -------------------------------------
class Guard:
    """Pure ASGI middleware: bearer-key check, then the body-size limit.

    Runs before routing and before the body is read, so an unauthenticated or oversized
    request costs nothing. Keys are compared in constant time (``hmac.compare_digest``).
    """

    def __init__(self, app: ASGIApp, config: ServerConfig) -> None:
        self.app = app
        self.key = config.api_key.encode() if config.api_key else None
        self.read_key = config.read_api_key.encode() if config.read_api_key else None
        self.max_body = config.max_body_bytes
        self.hosts = host_allow_list(config)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        path: str = scope["path"]
        host = headers.get(b"host")
        if self.hosts is not None and host is not None and host_of(host.decode("latin-1")) not in self.hosts:
            # DNS rebinding: a hostile page reaches this port under its own name; refuse that name
            name = host.decode("latin-1")[:100]
            await self._reply(send, 421, f"host {name!r} is not served here; allowed: {', '.join(sorted(self.hosts))} "
                                         "(nearspace serve --allow-host NAME)", code="host_not_allowed")
            return
        if (self.key or self.read_key) and path not in PUBLIC_PATHS and not path.startswith("/static/"):
            given = self._credentials(headers.get(b"authorization"))
            if given is None or given is False:
                # constant time in the key's content (a length mismatch returns early, revealing only that)
                message = ("missing API key: send 'Authorization: Bearer <key>'" if given is None
                           else "invalid API key")
                await self._reply(send, 401, message, code="invalid_api_key",
                                  extra=[(b"www-authenticate", b'Bearer realm="nearspace"')])
                return
            writer = self.key is not None and hmac.compare_digest(given, self.key)
            reader = self.read_key is not None and hmac.compare_digest(given, self.read_key)
            if not writer and not reader:
                await self._reply(send, 401, "invalid API key", code="invalid_api_key",
                                  extra=[(b"www-authenticate", b'Bearer realm="nearspace"')])
                return
            if not writer and _is_write(scope["method"], path):
                await self._reply(send, 403, "this API key may only read; writes need the read-write key",
                                  code="read_only_key")
                return
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_body
            except ValueError:
                await self._reply(send, 400, "malformed Content-Length header")
                return
            if too_big:
                await self._drain(receive)
                await self._reply(send, 413, self._too_big(), code="request_too_large")
                return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body:  # chunked upload without a length: stop at the limit
                raise HTTPException(413, self._too_big())
            return message

        await self.app(scope, counted, send)

    @staticmethod
    def _credentials(value: bytes | None) -> bytes | None | bool:
        """The bearer token; None when no credentials were sent; False when they are malformed
        (RFC 7235: the scheme, then one or more spaces, then the token; a tab is not a separator)."""
        if value is None or not value.strip():
            return None
        scheme, sep, token = value.partition(b" ")
        token = token.lstrip(b" ")
        if not sep or scheme.lower() != b"bearer" or not token or any(c in token for c in b" \t\r\n"):
            return False
        return token

    def _too_big(self) -> str:
        return f"request body exceeds the limit of {self.max_body} bytes (nearspace serve --max-body-mb)"

    async def _drain(self, receive: Receive, cap: int = 64 * 1024 * 1024) -> None:
        """Read (and drop) a refused body, up to ``cap``, so the client gets to read the 413."""
        seen = 0
        while seen < cap:
            message = await receive()
            seen += len(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body", False):
                return

    @staticmethod
    async def _reply(send: Send, status: int, message: str, *, code: str | None = None,
                     extra: list[tuple[bytes, bytes]] | None = None) -> None:
        response = JSONResponse(error_body(status, message, code=code), status_code=status)
        await send({"type": "http.response.start", "status": status,
                    "headers": response.raw_headers + (extra or [])})
        await send({"type": "http.response.body", "body": response.body})


def _is_write(method: str, path: str) -> bool:
    """Requests that change the store (refused to the read-only key)."""
    method = method.upper()
    if method in ("DELETE", "PUT", "PATCH"):
        return True
    return method == "POST" and path.rstrip("/").endswith("/documents")


# -- the application ---------------------------------------------------------------------------------
def create_app(config: ServerConfig, engine: Optional[Engine] = None) -> FastAPI:
    """The app for ``config``. Without ``engine`` the store and model open at startup (lifespan);
    ``nearspace serve`` passes one it opened already, so a bad store fails before binding."""
    models = request_models(config.max_batch, config.max_k, engine.encoder.dim if engine else None)
    EmbeddingsRequest, WriteRequest, SearchRequest, AskRequest, RerankRequest = (
        models.embeddings, models.write, models.search, models.ask, models.rerank)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened = engine or await asyncio.to_thread(Engine, config)
        app.state.engine = opened
        try:
            yield
        finally:
            # uvicorn has finished every in-flight request by now; queued writes complete here
            await asyncio.to_thread(opened.close)

    app = FastAPI(title="nearspace", version=_version(), lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="A nearspace store over HTTP: OpenAI-compatible embeddings, documents, "
                              "keyword, dense and hybrid search, ask (passages with citations) and maps.")
    app.add_middleware(Guard, config=config)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _install_error_handlers(app)

    def eng() -> Engine:
        return app.state.engine

    def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
        out: dict[int | str, dict[str, Any]] = {c: {"model": ErrorResponse, "description": _DESCRIPTIONS[c]}
                                                for c in codes}
        if config.api_key or config.read_api_key:
            out[401] = {"model": ErrorResponse, "description": _DESCRIPTIONS[401]}
        return out

    body_errors = (400, 413, 415, 422)
    Name = PathParam(pattern=COLLECTION_NAME, description="Collection name: letters, digits, '_', '-', '.' (max 64).")

    # -- page and health ------------------------------------------------------------------------------
    @app.get("/", include_in_schema=True, response_class=FileResponse, tags=["page"],
             responses={200: {"content": {"text/html": {}}, "description": "The search page."}})
    async def page(collection: Optional[str] = None, q: Optional[str] = None) -> FileResponse:
        """The search page; `?collection=NAME&q=QUERY` opens with that search run."""
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/health", response_model=Health, tags=["meta"])
    async def health() -> dict[str, Any]:
        """Liveness: answers once the model and store are open. Never needs a key."""
        return {"status": "ok", "model": eng().encoder.name, "auth": bool(config.api_key)}

    # -- OpenAI-compatible ------------------------------------------------------------------------------
    def model_entry() -> dict[str, Any]:
        return {"id": eng().encoder.name, "object": "model", "created": 0, "owned_by": "nearspace",
                "dimensions": eng().encoder.dim}

    @app.get("/v1/models", response_model=ModelList, responses=responses(), tags=["openai"])
    async def list_models() -> dict[str, Any]:
        """The encoders this server embeds with (OpenAI's model list)."""
        return {"object": "list", "data": [model_entry()]}

    @app.get("/v1/models/{model}", response_model=Model, responses=responses(404), tags=["openai"])
    async def get_model(model: str) -> dict[str, Any]:
        _require_model(model)
        return model_entry()

    def _require_model(model: str) -> None:
        if canonical_name(model) != canonical_name(eng().encoder.name):
            raise ApiError(404, f"The model `{model}` does not exist; this server embeds with "
                                f"`{eng().encoder.name}` (GET /v1/models)", type="invalid_request_error",
                           param="model", code="model_not_found")

    @app.post("/v1/embeddings", response_model=EmbeddingsResponse, responses=responses(404, *body_errors),
              tags=["openai"])
    async def embeddings(body: EmbeddingsRequest) -> dict[str, Any]:  # type: ignore[valid-type]
        """OpenAI's embeddings endpoint: unit-length float32 vectors, as `float` or `base64`."""
        _require_model(body.model)
        encoder = eng().encoder
        if body.dimensions is not None and body.dimensions != encoder.dim:
            raise ApiError(422, f"dimensions={body.dimensions} is not available: {encoder.name} returns "
                                f"{encoder.dim}-dimensional vectors", param="dimensions")
        texts = [body.input] if isinstance(body.input, str) else list(body.input)
        vectors, tokens = await eng().compute(encoder.encode_with_usage, texts)
        if body.encoding_format == "base64":
            little = vectors.astype("<f4", copy=False)
            data = [base64.b64encode(row.tobytes()).decode("ascii") for row in little]
        else:
            data = vectors.tolist()
        return {"object": "list", "model": encoder.name, "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                "data": [{"object": "embedding", "index": i, "embedding": e} for i, e in enumerate(data)]}

    # -- collections ----------------------------------------------------------------------------------
    @app.get("/v1/collections", response_model=CollectionsResponse, responses=responses(), tags=["collections"])
    async def list_collections() -> dict[str, Any]:
        """Collections in the store, with document counts."""
        return {"collections": await eng().read(eng().list_collections)}

    @app.post("/v1/collections/{name}/documents", response_model=WriteResponse,
              responses=responses(404, 409, *body_errors), tags=["collections"])
    async def write_documents(body: WriteRequest, name: str = Name) -> dict[str, Any]:  # type: ignore[valid-type]
        """Add or upsert a batch of documents in one transaction (the collection is created if new).

        Writes from all clients go through one writer thread, so concurrent batches are
        applied one after another and none is lost."""
        return await eng().write(_write, eng(), name, body)

    @app.get("/v1/collections/{name}/documents/{doc_id:path}", response_model=DocumentOut,
             responses=responses(404), tags=["collections"])
    async def get_document(doc_id: str, name: str = Name) -> dict[str, Any]:
        def work() -> dict[str, Any]:
            doc = eng().collection(name).get(doc_id)
            if doc is None:
                raise ApiError(404, f"no document {doc_id!r} in collection {name!r}", param="id")
            return {"id": doc.id, "text": doc.text, "title": doc.title, "metadata": doc.metadata}

        return await eng().read(work)

    @app.delete("/v1/collections/{name}/documents/{doc_id:path}", response_model=DeleteResponse,
                responses=responses(404), tags=["collections"])
    async def delete_document(doc_id: str, name: str = Name) -> dict[str, Any]:
        def work() -> dict[str, Any]:
            coll = eng().collection(name)
            if coll.get(doc_id) is None:
                raise ApiError(404, f"no document {doc_id!r} in collection {name!r}", param="id")
            coll.delete([doc_id])
            return {"collection": name, "id": doc_id, "deleted": True, "count": coll.count()}

        return await eng().write(work)

    @app.post("/v1/collections/{name}/search", response_model=SearchResponse,
              responses=responses(404, *body_errors), tags=["collections"])
    async def search(body: SearchRequest, name: str = Name) -> dict[str, Any]:  # type: ignore[valid-type]
        """Dense, keyword or hybrid search: the same results as `Collection.search` for the same call."""
        def work() -> dict[str, Any]:
            hits = eng().collection(name).search(body.query, k=body.k, mode=body.mode, where=body.where or None,
                                                 rerank=reranker(body.rerank), rerank_k=body.rerank_k)
            return {"results": [hit.to_dict() for hit in hits]}

        return await eng().read(work)

    @app.post("/v1/collections/{name}/ask", response_model=AskResponse, responses=responses(404, *body_errors),
              tags=["collections"])
    async def ask(body: AskRequest, name: str = Name) -> dict[str, Any]:  # type: ignore[valid-type]
        """Passages with citations for a question, and an extractive answer (`Collection.ask`)."""
        def work() -> dict[str, Any]:
            return eng().collection(name).ask(body.question, k=body.k, budget=body.budget,
                                              where=body.where or None, rerank=reranker(body.rerank),
                                              rerank_k=body.rerank_k).to_dict()

        return await eng().read(work)

    def reranker(wanted: bool):
        if not wanted:
            return None
        if eng().reranker is None:
            raise ApiError(400, "this server has no reranker: start it with `nearspace serve --rerank ce:FOLDER`",
                           param="rerank")
        return eng().reranker

    @app.post("/v1/rerank", responses=responses(400, 404, *body_errors), tags=["openai"])
    async def rerank(body: RerankRequest) -> dict[str, Any]:  # type: ignore[valid-type]
        """The `/v1/rerank` shape (Cohere, Jina, vLLM, TEI): documents scored against the query, best first."""
        chosen = reranker(True)
        if body.model not in chosen.names():
            raise ApiError(404, f"The reranker `{body.model}` does not exist; this server reranks with "
                                f"`{chosen.name}`", param="model", code="model_not_found")

        def work() -> dict[str, Any]:
            scores = [float(s) for s in chosen.score(body.query, body.documents)]
            order = sorted(range(len(scores)), key=lambda i: -scores[i])[:body.top_n or len(scores)]
            results = [{"index": i, "relevance_score": scores[i],
                        **({"document": {"text": body.documents[i]}} if body.return_documents else {})}
                       for i in order]
            return {"model": chosen.name, "results": results}

        return await eng().read(work)

    @app.get("/v1/collections/{name}/map", response_model=MapResponse, responses=responses(404, 422),
             tags=["collections"])
    async def map_(name: str = Name, method: Literal["pca", "umap"] = "pca") -> dict[str, Any]:
        """2-D coordinates and cluster labels for every document (`nearspace.analyze.maps.build_map`);
        computed once per state of the collection, then served from memory."""
        return await eng().read(eng().map, name, method)

    _install_openapi(app, config)
    return app


def _write(engine: Engine, name: str, body: Any) -> dict[str, Any]:
    """Validate everything first, then create the collection and write: bad input stores nothing."""
    docs = list(body.documents)
    if body.mode == "add":
        seen: set[str] = set()
        for doc in docs:
            if doc.id in seen:
                raise ApiError(422, f"id {doc.id!r} appears more than once in the batch", param="documents")
            seen.add(doc.id)
    else:  # a repeated id keeps its last occurrence, at its own position (as Collection.upsert does)
        latest: dict[str, Any] = {}
        for doc in docs:
            latest.pop(doc.id, None)
            latest[doc.id] = doc
        docs = list(latest.values())
    existing = name in engine.list_collection_names()
    dim = engine.collection(name).backend.dim if existing else engine.encoder.dim
    vectors = None
    if docs[0].vector is not None:
        for i, doc in enumerate(docs):
            if len(doc.vector) != dim:
                raise ApiError(422, f"documents[{i}].vector has {len(doc.vector)} dimensions; collection "
                                    f"{name!r} holds {dim}-dimensional vectors", param="vector")
        vectors = np.asarray([doc.vector for doc in docs], dtype=np.float32)
        if not np.linalg.norm(vectors, axis=1).all():
            raise ApiError(422, "a vector is all zeros", param="vector")
        vectors = normalize_rows(vectors)  # search scores are cosines: store unit vectors
    coll = engine.collection(name, create=True)
    if body.mode == "add":
        clash = coll.backend.hashes([d.id for d in docs])
        if clash:
            raise ApiError(409, f"{len(clash)} id(s) already stored in {name!r}, e.g. {next(iter(clash))!r}; "
                                "use mode 'upsert' to replace them", param="documents")
    write = coll.add if body.mode == "add" else coll.upsert
    counts = write(ids=[d.id for d in docs], texts=[d.text for d in docs], titles=[d.title for d in docs],
                   metadatas=[d.metadata for d in docs], vectors=vectors, show_progress=False)
    return {"collection": name, **counts, "count": coll.count()}


_DESCRIPTIONS = {400: "The request could not be read.", 401: "Missing or wrong API key.",
                 404: "No such collection, document or model.",
                 409: "Conflicts with what is stored (an id that exists for mode 'add', or another encoder).",
                 413: "The body is larger than the server's limit.",
                 415: "The body is not sent as JSON.",
                 422: "The request is well-formed JSON but invalid; the message names the field."}


def _install_error_handlers(app: FastAPI) -> None:
    def reply(status: int, message: str, *, type: str | None = None, param: str | None = None,
              code: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(error_body(status, message, type=type, param=param, code=code),
                            status_code=status, headers=headers)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return reply(exc.status, exc.message, type=exc.type, param=exc.param, code=exc.code)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
            # Starlette names only the first matching route's methods; a path may have several
            allowed = sorted({m for route in app.routes if getattr(route, "path_regex", None) is not None
                              and route.path_regex.match(request.url.path) for m in (route.methods or ())})
            return reply(405, message, headers={"Allow": ", ".join(allowed)})
        if exc.status_code == 400 and message == "There was an error parsing the body":
            # FastAPI's JSON parse failed; the cause says why (docs/server.md promises 422 for these)
            cause = exc.__cause__
            if isinstance(cause, RecursionError):
                return reply(422, "the request body is nested too deeply to parse (filters may nest "
                                  "16 levels, metadata 32)", code="limit_exceeded")
            if isinstance(cause, ValueError) and "digits" in str(cause):
                return reply(422, "a number in the request body has thousands of digits; integers must fit "
                                  "in 64 bits", code="limit_exceeded")
            if isinstance(cause, (UnicodeDecodeError, ValueError)):
                return reply(422, f"the request body is not valid JSON ({type(cause).__name__})", code="json_invalid")
        code = "request_too_large" if exc.status_code == 413 else None
        return reply(exc.status_code, message, code=code, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = exc.errors()
        first = problems[0] if problems else {}
        if first.get("type") == "json_invalid":
            detail = (first.get("ctx") or {}).get("error", "")
            return reply(422, f"the request body is not valid JSON ({detail})" if detail
                         else "the request body is not valid JSON", code="json_invalid")
        if tuple(first.get("loc", ())) == ("body",) and not _is_json(request.headers.get("content-type")):
            return reply(415, "send the body as JSON with 'Content-Type: application/json' (got "
                              f"{request.headers.get('content-type') or 'no Content-Type'})")
        parts = []
        for problem in problems[:3]:
            loc = ".".join(str(p) for p in problem.get("loc", ()) if p != "body") or "body"
            msg = str(problem.get("msg", "invalid")).removeprefix("Value error, ")
            if tuple(problem.get("loc", ())) == ("path", "name"):
                msg = (f"invalid collection name {problem.get('input')!r}: use letters, digits, '_', '-', '.' "
                       "(max 64, not starting with '.' or '-')")
            parts.append(f"{loc}: {msg}")
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        param = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or None
        return reply(422, "; ".join(parts) + more, param=param)

    @app.exception_handler(NearspaceError)
    async def nearspace_error(request: Request, exc: NearspaceError) -> JSONResponse:
        # disk full, read-only, locked, corrupt ...: 503 with the store error's code; limits: 422
        status, headers = http_status(exc)
        code = exc.code if isinstance(exc, StoreError) else "limit_exceeded" if isinstance(exc, LimitError) else None
        return reply(status, str(exc), code=code, headers=headers or None)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        from nearspace.errors import translate

        mapped = translate(exc)  # an OS/SQLite fault outside the store layer (e.g. saving an index file)
        if isinstance(mapped, NearspaceError):
            return await nearspace_error(request, mapped)
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return reply(500, f"internal error ({type(exc).__name__}); see the server log", type="server_error")


def _is_json(content_type: str | None) -> bool:
    subtype = (content_type or "").split(";")[0].strip().lower().rpartition("/")[2]
    return subtype == "json" or subtype.endswith("+json")


def _install_openapi(app: FastAPI, config: ServerConfig) -> None:
    """Publish the bearer scheme (when a key is set) and the error schema for bodies FastAPI
    rejects before our handlers (405 on known paths is left to the method list)."""

    def schema() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        spec.setdefault("components", {}).setdefault("schemas", {})["Where"] = WHERE_SCHEMA
        if config.api_key or config.read_api_key:
            spec.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
                "type": "http", "scheme": "bearer", "description": "NEARSPACE_API_KEY"}
            for path, item in spec["paths"].items():
                if path in PUBLIC_PATHS:
                    continue
                for operation in item.values():
                    operation["security"] = [{"bearer": []}]
        app.openapi_schema = spec
        return spec

    app.openapi = schema  # type: ignore[method-assign]


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("nearspace")
    except Exception:  # running from a source tree without metadata
        return "0"
