"""Dashboards served by the twin server at /ui: fleet, asset, alarms, reference-model catalogue and
the AI-adoption level. Server-rendered HTML with small scripts; everything ships in this package.

``mount(app, settings)`` adds the routes; the pages read the same repository, time-series store and
event bus as the API and check every request with the server's own authenticator.
"""

from __future__ import annotations

from fastapi import FastAPI

from twin_server.ui.context import UiSettings
from twin_server.ui.routes import router

__all__ = ["UiSettings", "mount"]


def mount(app: FastAPI, settings: UiSettings) -> None:
    app.state.ui_settings = settings
    app.include_router(router)
