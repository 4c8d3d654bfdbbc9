"""Configuration of an OPC UA source (and of a connection, shared with tag discovery).

Apart from the connector so that reading a config, or running an agent without OPC UA sources, does not
import asyncua (about 37 MB of an agent's memory).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edge_agent.connectors.base import Backoff

#: The application URI the client announces when its certificate names none.
DEFAULT_APPLICATION_URI = "urn:twinedge:edge-agent"


class OpcUaConfigError(ValueError):
    """The source cannot be started as configured (missing secret or file); the message says what to do."""


class OpcUaNode(BaseModel):
    """One signal read from one OPC UA variable."""

    model_config = ConfigDict(extra="forbid")

    signal: str = Field(min_length=1)
    #: e.g. ``ns=2;s=Press1.OilTemperature`` or ``ns=2;i=1001``.
    node_id: str
    mode: Literal["subscribe", "poll"] = "subscribe"
    #: Sampling interval in ms (subscribe); 0 asks for the fastest the server supports.
    sampling_interval: float = Field(default=1000.0, ge=0)
    #: Values the server may queue for this item between two publish responses (subscribe).
    queue_size: int = Field(default=10, ge=1)
    #: Report a numeric value only when it moved more than the band from the last one reported.
    #: Subscribe: a data-change filter on the server, checked here too; poll: checked here.
    deadband: Literal["none", "absolute", "percent"] = "none"
    #: Absolute: in the value's unit. Percent: of the node's EURange (0-100).
    deadband_value: float = Field(default=0.0, ge=0)
    #: Seconds between two reads (poll).
    poll_interval: float = Field(default=1.0, gt=0)

    @field_validator("node_id")
    @classmethod
    def _valid_node_id(cls, value: str) -> str:
        from asyncua.ua import NodeId  # only for OPC UA sources: asyncua is a large import

        try:
            node_id = NodeId.from_string(value)
        except Exception:
            node_id = None
        if node_id is None or node_id.Identifier in ("", b"", None):
            raise ValueError(f"{value!r} is not an OPC UA node id: write it like ns=2;s=Press1.OilTemperature "
                             "or ns=2;i=1001")
        return value

    @model_validator(mode="after")
    def _valid_deadband(self) -> OpcUaNode:
        if self.deadband == "percent" and self.deadband_value > 100:
            raise ValueError(f"deadband_value {self.deadband_value} is above 100: a percent deadband is a "
                             "share of the node's EURange, from 0 to 100")
        if self.deadband == "none" and self.deadband_value:
            raise ValueError("deadband_value is set but deadband is none: set deadband to absolute or percent")
        return self


class OpcUaConnection(BaseModel):
    """Where an OPC UA server is and how to log in: shared by the connector and tag discovery."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str
    security_policy: Literal["None", "Basic256Sha256"] = "None"
    security_mode: Literal["None", "Sign", "SignAndEncrypt"] = "None"
    #: The client's application instance certificate (DER or PEM) and its private key (PEM or DER).
    certificate: Path | None = None
    private_key: Path | None = None
    #: The server's certificate to trust; without it the one the server announces is used.
    server_certificate: Path | None = None
    username: str | None = None
    #: Name of the environment variable that holds the password (never the password itself).
    password_env: str | None = None
    #: Seconds to wait for each request (and for a connect, twice that).
    timeout: float = Field(default=5.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _no_password_in_file(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "password" in data:
            raise ValueError("password must not be written in the config: put it in an environment variable "
                             "and name that variable in password_env")
        return data

    @field_validator("endpoint")
    @classmethod
    def _valid_endpoint(cls, value: str) -> str:
        if not value.startswith("opc.tcp://") or len(value) <= len("opc.tcp://"):
            raise ValueError(f"{value!r} is not an OPC UA endpoint: write it like opc.tcp://host:4840")
        return value

    @model_validator(mode="after")
    def _valid_security(self) -> Self:
        if (self.security_policy == "None") != (self.security_mode == "None"):
            raise ValueError(f"security_policy {self.security_policy} and security_mode {self.security_mode} do "
                             "not go together: use None with None, or Basic256Sha256 with Sign or SignAndEncrypt")
        if (self.certificate is None) != (self.private_key is None):
            raise ValueError("certificate and private_key go together: set both or neither")
        if self.security_policy != "None" and self.certificate is None:
            raise ValueError(f"security_policy {self.security_policy} needs the client's certificate and "
                             "private_key")
        if self.password_env is not None and self.username is None:
            raise ValueError("password_env is set but username is not: set the user name too")
        return self


class OpcUaSourceConfig(OpcUaConnection):
    """An OPC UA server and the nodes read from it."""

    type: Literal["opcua"] = "opcua"
    name: str = Field(min_length=1)
    backoff: Backoff = Field(default_factory=Backoff)
    #: Publishing interval of the subscription in ms; default: the smallest sampling interval.
    publishing_interval: float | None = Field(default=None, gt=0)
    nodes: list[OpcUaNode] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_signals(self) -> OpcUaSourceConfig:
        seen: set[str] = set()
        for node in self.nodes:
            if node.signal in seen:
                raise ValueError(f"signal {node.signal!r} appears twice in nodes: signal names must be unique")
            seen.add(node.signal)
        return self


def prepare(conn: OpcUaConnection, environ: Mapping[str, str] | None, who: str) -> tuple[str | None, str]:
    """(password, application URI) for `conn`; OpcUaConfigError naming `who` if a secret or file is missing."""
    env = os.environ if environ is None else environ
    password: str | None = None
    if conn.password_env is not None:
        password = env.get(conn.password_env)
        if password is None:
            raise OpcUaConfigError(
                f"{who}: environment variable {conn.password_env} (the password of user {conn.username!r}) is not "
                "set: export it before starting")
    for field in ("certificate", "private_key", "server_certificate"):
        path: Path | None = getattr(conn, field)
        if path is not None and not path.is_file():
            raise OpcUaConfigError(f"{who}: {field} file {path} does not exist")
    application_uri = DEFAULT_APPLICATION_URI
    if conn.certificate is not None:
        application_uri = _certificate_uri(conn.certificate) or application_uri
    return password, application_uri


def _certificate_uri(path: Path) -> str | None:
    """The application URI named in a certificate's subjectAltName (OPC UA requires it to match)."""
    from cryptography import x509

    data = path.read_bytes()
    try:
        cert = x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data else x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise OpcUaConfigError(f"certificate file {path} is not an X.509 certificate (DER or PEM): {exc}") from exc
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None
