"""What every page handler needs: the request's language, the store, the time series and 'now'."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request

from aas_models.timeseries.base import TimeSeriesStore
from twin_server.repository import Repository
from twin_server.routes.common import parts
from twin_server.ui.i18n import Lang, choose


@dataclass(frozen=True)
class UiSettings:
    """Where the UI finds its editable data (set by create_app from the server config)."""

    data_dir: Path
    reference_models: tuple[Path, ...] = ()
    """Folders that may hold reference models (``<type>/<version>/metadata.yaml``)."""

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> UiSettings:
        """Reference models in DATA_DIR/reference_models, beside the data directory, or in the working directory."""
        roots = (data_dir / "reference_models", data_dir.resolve().parent / "reference_models",
                 Path.cwd() / "reference_models")
        unique = tuple(dict.fromkeys(p.resolve() for p in roots))
        return cls(data_dir, unique)

    @property
    def adoption_model(self) -> Path:
        """The factory's own copy of the assessment model; the shipped default when absent."""
        return self.data_dir / "adoption-model.yaml"


@dataclass(frozen=True)
class Ctx:
    request: Request
    lang: Lang
    repo: Repository
    store: TimeSeriesStore
    now: dt.datetime
    settings: UiSettings


def ctx(request: Request) -> Ctx:
    store = request.app.state.timeseries
    assert isinstance(store, TimeSeriesStore)
    settings = request.app.state.ui_settings
    assert isinstance(settings, UiSettings)
    return Ctx(request, choose(request), parts(request).repo, store, dt.datetime.now(dt.UTC), settings)
