"""`twinedge server`: run the AAS Part 2 HTTP API."""

from __future__ import annotations

import gc
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from twin_server.auth import AuthConfigError, bind_policy, new_token, startup_notice
from twin_server.config import ConfigError, ServerConfig, load_config

if TYPE_CHECKING:
    from twin_server.app import TwinServerApp


@click.command(name="server")
@click.option("--host", help="Address to listen on.  [default: 127.0.0.1]")
@click.option("--port", type=int, help="Port.  [default: 8081]")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Folder of the embedded SQLite store.  [default: twinedge-data]")
@click.option("--db", help="PostgreSQL DSN (postgresql://...) instead of the embedded store.")
@click.option("--load", "load_files", multiple=True, type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="AAS file (.json, .xml, .aasx) to load at start-up; repeatable. Existing ids are replaced.")
@click.option("--catalogue", type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="Reference-model catalogue (e.g. reference_models): serve its released models as templates.")
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="YAML configuration (tokens, limits, CORS, ...); options given here override it.")
@click.option("--insecure", is_flag=True, help="Allow listening on a non-loopback address without authentication.")
@click.option("--durability", type=click.Choice(["normal", "fsync"]),
              help="normal: writes survive a server crash; fsync: also a power cut.  [default: normal]")
@click.option("--runtime", type=click.Choice(["uvicorn", "granian"]), default="uvicorn", show_default=True,
              help="HTTP server; granian is experimental (needs the granian package, see docs/twin-server.md).")
def server(host: str | None, port: int | None, data_dir: Path | None, db: str | None,
           load_files: tuple[Path, ...], catalogue: Path | None, config_file: Path | None, insecure: bool,
           durability: str | None, runtime: str) -> None:
    """Serve shells, submodels and concept descriptions over the AAS Part 2 HTTP API 3.0.

    The API is at http://HOST:PORT/api/v3.0 . Without tokens in the configuration the server only
    listens on loopback; see docs/twin-server.md for tokens, JWT and PostgreSQL.
    """
    from twin_server.app import create_app

    try:
        config = load_config(config_file) if config_file else ServerConfig()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    overrides: dict[str, Any] = {k: v for k, v in {
        "host": host, "port": port, "data_dir": data_dir, "db": db, "durability": durability,
    }.items() if v is not None}
    if load_files:
        overrides["load"] = [*config.load, *load_files]
    if catalogue is not None:
        overrides["catalogue"] = catalogue
    if insecure:
        overrides["insecure"] = True
    config = config.model_copy(update=overrides)
    try:
        app = create_app(config, config_dir=config_file.parent if config_file else None)
    except AuthConfigError as exc:
        raise click.ClickException(str(exc)) from None
    auth_enabled = app.state.parts.auth.enabled
    refusal = bind_policy(config.host, auth_enabled, config.insecure)
    if refusal:
        raise click.ClickException(refusal)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    click.echo(startup_notice(config.host, auth_enabled, config.insecure), err=True)
    click.echo(f"AAS API: http://{config.host}:{config.port}/api/v3.0", err=True)
    # The imported libraries are ~125,000 long-lived objects: a full collection walking them stalls the event
    # loop for 30-60 ms. Frozen, they are left out of every collection.
    gc.freeze()
    if runtime == "granian":
        run_granian(app, config.host, config.port)
        return
    import uvicorn

    http: Any = "auto"
    try:  # the fast lane's calls answered by the HTTP protocol itself (needs httptools, else uvicorn's h11)
        from twin_server.http_protocol import protocol_for

        if app.fast_lane is not None:
            http = protocol_for(app.fast_lane)
    except ImportError:
        pass
    from twin_server.uvicorn_server import TwinUvicornServer

    TwinUvicornServer(uvicorn.Config(app, host=config.host, port=config.port, log_level="warning", access_log=False,
                                     loop="auto", http=http, timeout_graceful_shutdown=3)).run()


def run_granian(app: TwinServerApp, host: str, port: int) -> None:
    """One granian worker process (forked, so it serves this very app object) on a uvloop event loop.

    Unlike uvicorn, granian does not end open event streams on shutdown: it kills the worker after 3 s,
    and the application's own shutdown (closing the stores) does not run then.
    """
    try:
        from granian.constants import Interfaces, Loops
        from granian.log import LogLevels
        from granian.server import Server
    except ImportError:
        raise click.ClickException("--runtime granian needs the granian package: pip install granian") from None
    # The target string only names the process: the loader hands the worker `app` itself.
    granian = Server("twin_server.app:create_app", address=host, port=port, interface=Interfaces.ASGI, workers=1,
                     loop=Loops.uvloop, log_level=LogLevels.warning, log_access=False, workers_kill_timeout=3)
    granian.serve(target_loader=lambda _target: app)


@click.command(name="server-token")
@click.option("--name", default="client", show_default=True)
@click.option("--role", type=click.Choice(["reader", "writer", "admin"]), default="writer", show_default=True)
def server_token(name: str, role: str) -> None:
    """Make a new API token: prints the token (give it to the client) and its config entry (keep it)."""
    plain, digest = new_token()
    click.echo(f"token (shown once): {plain}")
    click.echo("config entry (under auth: tokens:):")
    click.echo(f"  - {{name: {name}, role: {role}, sha256: {digest}}}")
