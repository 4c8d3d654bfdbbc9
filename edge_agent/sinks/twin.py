"""Sink into the twin server: the latest value of each element, batched into one value-only
`PATCH /submodels/{id}/$value` per submodel (the server's bulk write).

For an OperationalData signal (`<Signal>.Value`) the same PATCH also sets its `Quality` and
`Timestamp` siblings, so the twin always says how fresh and how trustworthy its value is.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from aas_models.ids import b64url_encode
from aas_models.timeseries.base import Sample
from edge_agent.sinks.base import Sink, SinkError, SinkRejected


class TwinSinkConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["twin"] = "twin"
    name: str = "twin"
    #: The server's API base, e.g. http://127.0.0.1:8081/api/v3.0
    url: str = "http://127.0.0.1:8081/api/v3.0"
    #: Environment variable holding a writer token (none: the server must be on loopback without auth).
    token_env: str | None = None
    timeout: float = Field(default=10.0, gt=0)
    #: Also write `Quality` and `Timestamp` next to every `*.Value` element.
    quality_siblings: bool = True
    verify_tls: bool | str = True


def _iso(sample: Sample) -> str:
    return sample.time.isoformat().replace("+00:00", "Z")


def value_patch(samples: Sequence[Sample], quality_siblings: bool) -> dict[str, dict[str, Any]]:
    """Submodel id -> nested value-only body with the newest sample of every element."""
    newest: dict[tuple[str, str], Sample] = {}
    for sample in samples:
        key = (sample.key.submodel_id, sample.key.path)
        current = newest.get(key)
        if current is None or sample.time >= current.time:
            newest[key] = sample
    bodies: dict[str, dict[str, Any]] = {}
    for (submodel_id, path), sample in newest.items():
        parts = path.split(".")
        node = bodies.setdefault(submodel_id, {})
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = sample.value
        if quality_siblings and parts[-1] == "Value" and len(parts) > 1:
            node["Quality"] = sample.quality.value
            node["Timestamp"] = _iso(sample)
    return bodies


class TwinSink(Sink):
    def __init__(self, config: TwinSinkConfig, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(config.name)
        self.config = config
        env = os.environ if environ is None else environ
        headers = {"Content-Type": "application/json"}
        if config.token_env:
            token = env.get(config.token_env)
            if not token:
                raise ValueError(f"sinks.{config.name}.token_env: environment variable {config.token_env} is not set")
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.AsyncClient(base_url=config.url.rstrip("/"), headers=headers, timeout=config.timeout,
                                         verify=config.verify_tls)

    async def close(self) -> None:
        await self._client.aclose()

    async def write(self, samples: Sequence[Sample]) -> None:
        for submodel_id, body in value_patch(samples, self.config.quality_siblings).items():
            url = f"/submodels/{b64url_encode(submodel_id)}/$value"
            try:
                response = await self._client.patch(url, json=body)
            except httpx.HTTPError as exc:
                raise SinkError(f"twin server {self.config.url}: {exc.__class__.__name__}: {exc}") from exc
            if response.status_code >= 500 or response.status_code in (401, 403, 408, 429):
                raise SinkError(f"twin server answered {response.status_code}: {_text(response)}")
            if response.status_code >= 400:
                raise SinkRejected(f"twin server refused the values for {submodel_id}: "
                                   f"{response.status_code} {_text(response)}")


def _text(response: httpx.Response) -> str:
    try:
        messages = response.json().get("messages", [])
        return "; ".join(str(m.get("text", "")) for m in messages) or response.text[:200]
    except ValueError:
        return response.text[:200]
