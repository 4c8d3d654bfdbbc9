"""Stable identifiers for shells, submodels, concept descriptions and assets.

Why a scheme: a twin is rebuilt from its reference model many times (on every instantiation, upgrade
or test) and the edge agent, the server and analytics address it by id; the same inputs must give
the same ids, byte for byte. Every id is an IRI made of an id base and percent-encoded segments:

========================  =====================================================================
global asset id           ``{base}asset{sep}{asset}``
shell id                  ``{base}aas{sep}{asset}``
submodel id               ``{base}sm{sep}{asset}{sep}{submodel name}{sep}{submodel version}``
concept description id    ``{base}cd{sep}{model}{sep}{model version}{sep}{concept name}``
========================  =====================================================================

``{base}`` is :data:`DEFAULT_ID_BASE` (``urn:twinedge:``) unless a deployment chooses its own, e.g.
``https://acme.example/aas/``; ``{sep}`` is the last character of the base (``:`` or ``/``), so
ids read naturally under both URN and HTTP bases. Each segment is Unicode NFC-normalised, then
UTF-8 percent-encoded except for the RFC 3986 unreserved characters (``A-Z a-z 0-9 - . _ ~``): an
asset id such as ``Press 7/A`` becomes ``Press%207%2FA``, so a separator inside a segment can never
fake another segment. Shell and global asset ids do not contain the model version, so upgrading a
twin to a new reference model keeps its identity; submodel ids contain the submodel version because
the structure behind them changes with it. Concept ids belong to a reference model (not to an
asset): every press of model ``hydraulic-press`` 1.0 shares them.

The HTTP API carries ids as base64url without padding (AAS Part 2): :func:`b64url_encode` and
:func:`b64url_decode`.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from urllib.parse import quote

DEFAULT_ID_BASE = "urn:twinedge:"

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_B64URL = re.compile(r"^[A-Za-z0-9_-]*={0,2}$")


class IdError(ValueError):
    """An id base, an id segment or an encoded id is unusable; the message says what to change."""


def check_id_base(id_base: str) -> str:
    """Return `id_base` if it is an absolute IRI prefix ending in ``:`` or ``/``; raise IdError if not."""
    if not _SCHEME.match(id_base) or id_base[-1] not in ":/" or any(c.isspace() for c in id_base):
        raise IdError(
            f"id base {id_base!r} must be an absolute IRI prefix without spaces that ends in ':' or '/', "
            "e.g. 'urn:acme:' or 'https://acme.example/aas/'"
        )
    return id_base


def encode_segment(text: str) -> str:
    """Percent-encode one id segment (NFC first, so that equal-looking names give equal ids)."""
    if not text or text.isspace():
        raise IdError("an id segment (asset id, model, name or version) must not be empty")
    return quote(unicodedata.normalize("NFC", text), safe="")


def _join(id_base: str, kind: str, *segments: str) -> str:
    base = check_id_base(id_base)
    sep = base[-1]
    return base + sep.join([kind, *(encode_segment(s) for s in segments)])


def global_asset_id(asset_id: str, *, id_base: str = DEFAULT_ID_BASE) -> str:
    """The asset's globalAssetId, e.g. ``urn:twinedge:asset:press-01``."""
    return _join(id_base, "asset", asset_id)


def shell_id(asset_id: str, *, id_base: str = DEFAULT_ID_BASE) -> str:
    """The shell id of an asset, e.g. ``urn:twinedge:aas:press-01`` (one shell per asset)."""
    return _join(id_base, "aas", asset_id)


def submodel_id(asset_id: str, name: str, version: str, *, id_base: str = DEFAULT_ID_BASE) -> str:
    """A submodel id, e.g. ``urn:twinedge:sm:press-01:Nameplate:3.0``."""
    return _join(id_base, "sm", asset_id, name, version)


def concept_description_id(model: str, version: str, concept: str, *, id_base: str = DEFAULT_ID_BASE) -> str:
    """A reference model's concept id, e.g. ``urn:twinedge:cd:hydraulic-press:1.0:OilTemperature``."""
    return _join(id_base, "cd", model, version, concept)


def b64url_encode(identifier: str) -> str:
    """UTF-8, then base64url without ``=`` padding, as the AAS HTTP API puts ids into paths."""
    return base64.urlsafe_b64encode(identifier.encode("utf-8")).rstrip(b"=").decode("ascii")


def b64url_decode(encoded: str) -> str:
    """Inverse of :func:`b64url_encode`; tolerates padding, rejects anything else with IdError."""
    if not _B64URL.match(encoded) or len(encoded.rstrip("=")) % 4 == 1:
        raise IdError(f"{encoded!r} is not base64url (alphabet A-Z a-z 0-9 - _, without padding)")
    stripped = encoded.rstrip("=")
    padded = stripped + "=" * (-len(stripped) % 4)
    try:
        return base64.urlsafe_b64decode(padded).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise IdError(f"{encoded!r} does not decode to UTF-8 text; encode the id's UTF-8 bytes") from None
