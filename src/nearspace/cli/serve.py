"""``nearspace serve``: the HTTP API, OpenAI-compatible embeddings and the search page."""
from __future__ import annotations

import signal
from pathlib import Path
from typing import List, Optional

import typer

from nearspace.cli.app import PrecisionOpt, StoreOpt, _stderr, _where, app


@app.command()
def serve(ctx: typer.Context,
          host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; anything but loopback needs an API key."),
          port: int = typer.Option(8000, "--port", min=0, max=65535, help="TCP port (0: any free port)."),
          store: Optional[Path] = StoreOpt,
          api_key: Optional[str] = typer.Option(None, "--api-key", envvar="NEARSPACE_API_KEY", show_default=False,
                                                help="Require 'Authorization: Bearer KEY' on every endpoint but "
                                                     "/health and the page; env NEARSPACE_API_KEY (preferred: "
                                                     "command lines are visible to other users)."),
          read_api_key: Optional[str] = typer.Option(None, "--read-api-key", envvar="NEARSPACE_READ_API_KEY",
                                                     show_default=False,
                                                     help="A second key that may only read (search, ask, get, "
                                                          "embeddings); writes with it answer 403. Env "
                                                          "NEARSPACE_READ_API_KEY."),
          allow_host: Optional[List[str]] = typer.Option(None, "--allow-host", envvar="NEARSPACE_ALLOWED_HOSTS",
                                                         help="Host header name to serve (repeat; '*' for any). "
                                                              "Default: loopback names and --host, so a "
                                                              "DNS-rebinding page is refused."),
          max_body_mb: float = typer.Option(10.0, "--max-body-mb", min=0.001, help="Largest request body, in MB (413 above)."),
          max_batch: int = typer.Option(2048, "--max-batch", min=1, help="Most documents or embedding inputs per request."),
          max_k: int = typer.Option(1000, "--max-k", min=1, help="Largest k a search may ask for."),
          readers: int = typer.Option(4, "--readers", min=1, help="Threads serving searches and reads."),
          graceful: float = typer.Option(30.0, "--graceful-timeout", min=0,
                                         help="Seconds to let in-flight requests finish after SIGTERM/SIGINT."),
          access_log: bool = typer.Option(True, "--access-log/--no-access-log", help="Log every request."),
          rerank: Optional[str] = typer.Option(None, "--rerank", envvar="NEARSPACE_RERANK",
                                               help="A reranker (ce:FOLDER_OR_NAME, rerank:MODEL@URL): serves "
                                                    "POST /v1/rerank and `rerank: true` in search and ask."),
          precision: str = PrecisionOpt) -> None:
    """Serve a store over HTTP: /v1/embeddings (OpenAI-compatible), collections and search, and a search page at /."""
    store, _ = _where(ctx, store, None)
    from nearspace.server.config import MB, ServerConfig, is_loopback

    hosts = tuple(h for value in allow_host or [] for h in value.split(",") if h.strip()) or None
    try:
        config = ServerConfig(store=store, api_key=api_key, max_body_bytes=int(max_body_mb * MB),
                              max_batch=max_batch, max_k=max_k, readers=readers, precision=precision,
                              read_api_key=read_api_key, allowed_hosts=hosts, bind_host=host, rerank=rerank)
    except ValueError as exc:
        from nearspace.errors import InputError

        raise InputError(str(exc)) from None
    if config.api_key is None and config.read_api_key is None and not is_loopback(host):
        # checked before anything loads, so the refusal is immediate (main() prints it as one line)
        from nearspace.errors import InputError

        raise InputError(f"refusing to serve on {host} without an API key: anyone who can reach it could read and "
                    "change the store; set NEARSPACE_API_KEY (or --api-key), or bind 127.0.0.1")
    import uvicorn

    from nearspace.server.app import create_app
    from nearspace.server.engine import Engine

    err = _stderr()
    engine = Engine(config)  # opens the store and loads the model now: a bad store is a one-line error
    names = engine.list_collection_names()
    app_ = create_app(config, engine=engine)
    shown = f"[{host}]" if ":" in host else host
    where = f"http://{shown}:{port}/" if port else f"{shown}, on a free port (below)"
    err.print(f"nearspace: serving {config.store} ({', '.join(names) or 'no collections yet'}) at {where}; "
              f"API key {'required' if config.api_key else 'not required (loopback only)'}",
              highlight=False, soft_wrap=True)
    server = uvicorn.Server(uvicorn.Config(app_, host=host, port=port, access_log=access_log, log_level="info",
                                           timeout_graceful_shutdown=graceful, lifespan="on"))
    stopped_by: list[int] = []
    # uvicorn re-raises the captured signal once it has shut down; a clean stop on request exits 0
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, frame: stopped_by.append(number))
    try:
        server.run()  # SIGTERM/SIGINT: stop accepting, finish in-flight requests, then close the store
    finally:
        engine.close()
    if not server.started:
        raise typer.Exit(1)
    if stopped_by:
        err.print(f"nearspace: stopped by {signal.Signals(stopped_by[0]).name}; in-flight requests finished, "
                  "store closed", highlight=False, soft_wrap=True)
