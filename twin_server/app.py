"""The FastAPI application: AAS Part 2 API 3.0 at /api/v3.0 (and the same paths at /api/v3.1)."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import Receive, Scope, Send

from aas_models.catalogue.publish import released_model_files
from aas_models.timeseries.base import TimeSeriesStore
from aas_models.timeseries.sqlite import SqliteTimeSeries
from twin_server import errors, ui
from twin_server.auth import Authenticator
from twin_server.config import ServerConfig
from twin_server.events import Event, EventBus, EventKind, EventType, MqttPublisher
from twin_server.fastlane import FastLane
from twin_server.limits import BodyLimit
from twin_server.loader import load_files
from twin_server.repository import Repository
from twin_server.routes import concepts, events, packages, registry, service, shells, submodels, timeseries
from twin_server.routes.common import Parts
from twin_server.storage.base import Kind, Storage

log = logging.getLogger(__name__)
PREFIXES = ("/api/v3.0", "/api/v3.1")


class TwinServerApp(FastAPI):
    """FastAPI with the fast lane in front of all of it (even FastAPI's own per-request work and the
    middleware stack), so the hot calls pay for nothing else."""

    fast_lane: FastLane | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = self.fast_lane
        if lane is not None and scope["type"] == "http" and await lane.serve(scope, receive, send):
            return
        await super().__call__(scope, receive, send)


def make_storage(config: ServerConfig) -> Storage:
    if config.db:
        from twin_server.storage.postgres import PostgresStorage

        return PostgresStorage(config.db)
    from twin_server.storage.sqlite import SqliteStorage

    return SqliteStorage(config.data_dir / "twins.db", durability=config.durability)


def make_timeseries(config: ServerConfig) -> TimeSeriesStore:
    return SqliteTimeSeries(config.timeseries or config.data_dir / "timeseries.db")


def create_app(config: ServerConfig, *, storage: Storage | None = None, environ: Mapping[str, str] | None = None,
               config_dir: Path | None = None) -> TwinServerApp:
    store = storage or make_storage(config)
    history = make_timeseries(config)
    bus = EventBus()
    auth = Authenticator.from_config(config.auth, os.environ if environ is None else environ, base_dir=config_dir)

    def notify(event: str, kind: Kind, ident: str, path: str | None, value: object) -> None:
        bus.publish(Event(EventType(event), EventKind(kind.value), ident, path, value))

    repo = Repository(store, notify)
    mqtt = MqttPublisher(bus, config.mqtt) if config.mqtt else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await store.open()
        await history.open()
        try:
            files = [*config.load, *(released_model_files(config.catalogue) if config.catalogue else [])]
            if files:
                await load_files(repo, files)
            if mqtt:
                await mqtt.start()
            yield
        finally:
            bus.close()
            if mqtt:
                await mqtt.stop()
            await history.close()
            await store.close()

    app = TwinServerApp(title="TwinEdge twin server", version="3.0", lifespan=lifespan, docs_url=None,
                        redoc_url=None, openapi_url=f"{PREFIXES[0]}/openapi.json")
    app.state.parts = Parts(repo=repo, auth=auth)
    app.fast_lane = FastLane(app.state.parts, max_body_bytes=config.max_body_bytes, cors=bool(config.cors_origins))
    app.state.timeseries = history
    app.state.events = bus
    errors.install(app)
    for prefix in PREFIXES:
        app.include_router(shells.router, prefix=prefix)
        app.include_router(submodels.repository, prefix=prefix)
        app.include_router(submodels.submodel_interface("/submodels/{submodel_id}", submodels.direct_target),
                           prefix=prefix)
        app.include_router(
            submodels.submodel_interface("/shells/{aas_id}/submodels/{submodel_id}", submodels.shell_target),
            prefix=prefix)
        app.include_router(concepts.router, prefix=prefix)
        app.include_router(service.router, prefix=prefix)
        app.include_router(timeseries.router, prefix=prefix)
        app.include_router(packages.router, prefix=prefix)
        app.include_router(events.router, prefix=prefix)
        app.include_router(registry.router, prefix=prefix)
        app.include_router(service.scoped("/shells/{aas_id}", service.shell_scope), prefix=prefix)
        app.include_router(service.scoped("/submodels/{submodel_id}", service.submodel_scope), prefix=prefix)
    if config.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=config.cors_origins, allow_methods=["*"],
                           allow_headers=["*"])
    ui.mount(app, ui.UiSettings.for_data_dir(config.data_dir))  # dashboards at /ui
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    return app
