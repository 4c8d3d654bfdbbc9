"""The id scheme (aas_models.ids): stable, readable, IRI-valid ids and base64url for the HTTP API."""

from __future__ import annotations

import base64
import unicodedata

import pytest
from aas_core3 import verification

from aas_models import ids


def test_default_scheme_examples() -> None:
    assert ids.global_asset_id("press-01") == "urn:twinedge:asset:press-01"
    assert ids.shell_id("press-01") == "urn:twinedge:aas:press-01"
    assert ids.submodel_id("press-01", "Nameplate", "3.0") == "urn:twinedge:sm:press-01:Nameplate:3.0"
    assert (
        ids.concept_description_id("hydraulic-press", "1.0", "OilTemperature")
        == "urn:twinedge:cd:hydraulic-press:1.0:OilTemperature"
    )


def test_http_base_uses_slashes() -> None:
    base = "https://acme.example/aas/"
    assert ids.submodel_id("press-01", "Nameplate", "3.0", id_base=base) == (
        "https://acme.example/aas/sm/press-01/Nameplate/3.0"
    )
    assert ids.shell_id("press-01", id_base="urn:acme:") == "urn:acme:aas:press-01"


def test_same_inputs_same_ids_and_different_inputs_differ() -> None:
    made = {ids.submodel_id(a, n, v) for a in ("p1", "p2") for n in ("A", "B") for v in ("1.0", "1.1")}
    assert len(made) == 8
    assert ids.shell_id("p1") == ids.shell_id("p1")
    assert len({ids.shell_id("p1"), ids.global_asset_id("p1"), ids.submodel_id("p1", "A", "1")}) == 3


@pytest.mark.parametrize(
    ("asset", "encoded"),
    [
        ("Press 7", "Press%207"),
        ("line1:press3", "line1%3Apress3"),
        ("a/b?c#d", "a%2Fb%3Fc%23d"),
        ("프레스-1", "%ED%94%84%EB%A0%88%EC%8A%A4-1"),
        ("Größe_1.0~x", "Gr%C3%B6%C3%9Fe_1.0~x"),
        ("100%", "100%25"),
    ],
)
def test_asset_ids_are_percent_encoded(asset: str, encoded: str) -> None:
    assert ids.shell_id(asset) == f"urn:twinedge:aas:{encoded}"


def test_separators_inside_segments_cannot_collide() -> None:
    assert ids.submodel_id("a:b", "c", "1") != ids.submodel_id("a", "b:c", "1")


def test_unicode_is_nfc_normalised() -> None:
    composed = "프레스"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    assert ids.shell_id(composed) == ids.shell_id(decomposed)


@pytest.mark.parametrize("asset", ["press-01", "Press 7/A", "프레스 1", "a:b#c"])
def test_ids_are_valid_aas_identifiers_and_uris(asset: str) -> None:
    for identifier in (
        ids.global_asset_id(asset),
        ids.shell_id(asset),
        ids.submodel_id(asset, "OperationalData", "1.0"),
        ids.concept_description_id("hydraulic-press", "1.0", asset),
    ):
        assert verification.matches_rfc_2396(identifier), identifier
        assert verification.matches_xs_any_uri(identifier), identifier
        assert identifier.isascii() and " " not in identifier


@pytest.mark.parametrize("base", ["twinedge", "urn:twinedge", "https://x.example/aas", "urn:two words:", ""])
def test_bad_id_base_is_refused(base: str) -> None:
    with pytest.raises(ids.IdError, match="id base"):
        ids.shell_id("p1", id_base=base)


@pytest.mark.parametrize("segment", ["", "   "])
def test_empty_segment_is_refused(segment: str) -> None:
    with pytest.raises(ids.IdError, match="empty"):
        ids.submodel_id(segment, "Nameplate", "3.0")
    with pytest.raises(ids.IdError):
        ids.submodel_id("p1", "Nameplate", segment)


@pytest.mark.parametrize(
    "identifier",
    ["urn:twinedge:sm:press-01:Nameplate:3.0", "a", "ab", "abc", "https://x.example/?q=1&r=~", "프레스 7", ""],
)
def test_b64url_round_trip_without_padding(identifier: str) -> None:
    encoded = ids.b64url_encode(identifier)
    assert "=" not in encoded and "+" not in encoded and "/" not in encoded
    assert encoded == base64.urlsafe_b64encode(identifier.encode()).decode().rstrip("=")
    assert ids.b64url_decode(encoded) == identifier


def test_b64url_decode_tolerates_padding() -> None:
    assert ids.b64url_decode("YQ==") == "a"


@pytest.mark.parametrize("bad", ["a", "ab+c", "ab/c", "ab c", "YQ=a", "__8"])
def test_b64url_decode_rejects_garbage(bad: str) -> None:
    with pytest.raises(ids.IdError):
        ids.b64url_decode(bad)
