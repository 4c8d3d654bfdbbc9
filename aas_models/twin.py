"""The twin of one asset, built from an equipment spec: a shell with five submodels and its concepts.

The twin holds

- Nameplate (IDTA 02006-3-0) and TechnicalData (IDTA 02003-2-0) from the spec,
- OperationalData (own): one collection per signal, the value at ``<Signal>.Value``,
- TimeSeries (IDTA 02008-1-1): a Record of all signals and one LinkedSegment per signal pointing at
  the time-series store; per signal because each segment then names exactly one element, the same
  (submodel id, idShortPath) that holds the live value, and a trend is read one signal at a time,
- ConditionMonitoring (own), empty until analytics writes results,

plus a ConceptDescription for every signal and technical property (IEC 61360: name, definition,
unit, data type) and for every own semanticId. Ids follow :mod:`aas_models.ids`.
"""

from __future__ import annotations

from aas_core3 import types as aas

from aas_models import concepts, ids
from aas_models.builders import (
    condition_monitoring,
    nameplate,
    operational_data,
    technical_data,
    time_series,
)
from aas_models.builders.elements import submodel_ref
from aas_models.equipment import EquipmentSpec, EquipmentSpecError, SignalSpec, TechnicalPropertySpec
from aas_models.errors import Problem

_SUBMODEL_VERSIONS: tuple[tuple[str, tuple[str, str]], ...] = (
    (nameplate.ID_SHORT, nameplate.VERSION),
    (technical_data.ID_SHORT, technical_data.VERSION),
    (operational_data.ID_SHORT, operational_data.VERSION),
    (time_series.ID_SHORT, time_series.VERSION),
    (condition_monitoring.ID_SHORT, condition_monitoring.VERSION),
)


def submodel_id_for(asset_id: str, id_short: str, *, id_base: str = ids.DEFAULT_ID_BASE) -> str:
    """Id of one of the twin's submodels, named by its idShort (e.g. ``"OperationalData"``)."""
    versions = dict(_SUBMODEL_VERSIONS)
    if id_short not in versions:
        raise KeyError(f"a twin has no submodel {id_short!r}; it has {', '.join(versions)}")
    return ids.submodel_id(asset_id, id_short, ".".join(versions[id_short]), id_base=id_base)


def signal_address(asset_id: str, signal: str, *, id_base: str = ids.DEFAULT_ID_BASE) -> tuple[str, str]:
    """(submodel id, idShortPath) of the element that holds `signal`'s live value."""
    return (
        submodel_id_for(asset_id, operational_data.ID_SHORT, id_base=id_base),
        operational_data.value_path(signal),
    )


def _words(name: str) -> str:
    """``OilTemperature`` -> ``Oil temperature``: a readable default preferred name."""
    words: list[str] = []
    for i, char in enumerate(name):
        starts_word = char.isupper() and i > 0 and not name[i - 1].isupper()
        if starts_word or (char == "_" and words):
            words.append(" ")
        if char != "_":
            words.append(char.lower() if starts_word else char)
    return "".join(words).strip()


class _Concepts:
    """Collects the concepts of one twin; the same id twice must mean the same unit and data type."""

    def __init__(self, spec: EquipmentSpec, id_base: str) -> None:
        self._spec = spec
        self._id_base = id_base
        self.by_id: dict[str, concepts.Concept] = {}
        self._first_use: dict[str, str] = {}

    def add(self, where: str, item: SignalSpec | TechnicalPropertySpec, value_type: aas.DataTypeDefXSD) -> str:
        concept_id = item.semantic_id or ids.concept_description_id(
            self._spec.equipment_type, self._spec.version, item.name, id_base=self._id_base
        )
        concept = concepts.Concept(
            id=concept_id,
            id_short=item.name,
            preferred_name=item.preferred_name or _words(item.name),
            definition=item.description,
            data_type=concepts.data_type_for(value_type, item.unit),
            unit=item.unit,
        )
        known = self.by_id.setdefault(concept_id, concept)
        first = self._first_use.setdefault(concept_id, where)
        if (known.unit, known.data_type) != (concept.unit, concept.data_type):
            raise EquipmentSpecError([Problem(
                f"equipment spec {self._spec.equipment_type!r}", f"{where}.semantic_id", "spec-concept-conflict",
                f"{concept_id!r} already means unit {known.unit!r} ({known.data_type.name if known.data_type else '-'})"
                f" at {first}; here unit {concept.unit!r} "
                f"({concept.data_type.name if concept.data_type else '-'}): give each its own semantic_id",
            )])
        return concept_id


def build_twin(
    spec: EquipmentSpec,
    asset_id: str,
    *,
    serial_number: str | None = None,
    year_of_construction: str | None = None,
    id_base: str = ids.DEFAULT_ID_BASE,
    timeseries_endpoint: str = time_series.DEFAULT_ENDPOINT,
    line: str | None = None,
) -> aas.Environment:
    """The environment of one asset's twin; the same arguments always give the same ids and content.

    `line` (the production line the machine stands in) becomes a specificAssetId ``line``, by which the
    dashboards group machines and assess a line's AI adoption.
    """
    cds = _Concepts(spec, id_base)
    sm_id = {name: submodel_id_for(asset_id, name, id_base=id_base) for name, _ in _SUBMODEL_VERSIONS}
    asset = ids.global_asset_id(asset_id, id_base=id_base)

    signals = [
        operational_data.Signal(
            name=s.name,
            value_type=aas.DataTypeDefXSD(s.value_type),
            semantic_id=cds.add(f"signals[{i}]", s, aas.DataTypeDefXSD(s.value_type)),
            unit=s.unit,
            description=s.description,
            display_name=s.preferred_name,
        )
        for i, s in enumerate(spec.signals)
    ]
    properties = [
        technical_data.TechnicalProperty(
            id_short=p.name,
            value=p.value,
            value_type=aas.DataTypeDefXSD(p.xsd_type),
            semantic_id=cds.add(f"technical_properties[{i}]", p, aas.DataTypeDefXSD(p.xsd_type)),
            display_name=p.preferred_name,
        )
        for i, p in enumerate(spec.technical_properties)
    ]
    od_id = sm_id[operational_data.ID_SHORT]
    submodels = [
        nameplate.build_nameplate(_nameplate(spec, asset, serial_number, year_of_construction),
                                  sm_id[nameplate.ID_SHORT]),
        technical_data.build_technical_data(_technical_data(spec, properties), sm_id[technical_data.ID_SHORT]),
        operational_data.build_operational_data(signals, od_id),
        time_series.build_time_series(
            time_series.TimeSeriesInput(
                name={"en": f"Signals of {asset_id}"},
                description={"en": f"History of the live signals of {asset_id}, served by the time-series store"},
                variables=[time_series.Variable(s.name, s.semantic_id, s.value_type) for s in signals],
                segments=[
                    time_series.LinkedSegment(
                        endpoint=timeseries_endpoint,
                        query=time_series.timeseries_query(od_id, operational_data.value_path(s.name)),
                        name=s.name,
                        description=s.description,
                    )
                    for s in signals
                ],
            ),
            sm_id[time_series.ID_SHORT],
        ),
        condition_monitoring.build_condition_monitoring(sm_id[condition_monitoring.ID_SHORT]),
    ]
    shell = aas.AssetAdministrationShell(
        ids.shell_id(asset_id, id_base=id_base),
        aas.AssetInformation(
            aas.AssetKind.INSTANCE,
            global_asset_id=asset,
            specific_asset_ids=[aas.SpecificAssetID(name, value) for name, value in
                                (("serialNumber", serial_number), ("line", line)) if value] or None,
        ),
        id_short=shell_id_short(asset_id),
        display_name=[aas.LangStringNameType("en", asset_id[:128])],
        submodels=[submodel_ref(sm.id) for sm in submodels],
    )
    own = concepts.own_concept_descriptions()
    return aas.Environment(
        asset_administration_shells=[shell],
        submodels=submodels,
        concept_descriptions=own + [c.description() for c in cds.by_id.values()],
    )


def shell_id_short(asset_id: str) -> str:
    """A valid idShort for the shell: the asset id with every other character replaced by ``_``."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in asset_id)
    return cleaned if cleaned[:1].isalpha() else "Asset_" + cleaned


def _nameplate(spec: EquipmentSpec, asset: str, serial: str | None, year: str | None) -> nameplate.NameplateData:
    a = spec.address
    return nameplate.NameplateData(
        uri_of_the_product=asset,
        manufacturer_name=spec.manufacturer_name,
        manufacturer_product_designation=spec.product_designation,
        order_code_of_manufacturer=spec.order_code,
        address=nameplate.Address(
            company=a.company, street=a.street, zipcode=a.zipcode, city_town=a.city_town,
            state_county=a.state_county, national_code=a.national_code,
        ),
        manufacturer_product_family=spec.product_family,
        manufacturer_product_type=spec.product_type,
        product_article_number_of_manufacturer=spec.article_number,
        serial_number=serial,
        year_of_construction=year,
        country_of_origin=spec.country_of_origin,
    )


def _technical_data(
    spec: EquipmentSpec, properties: list[technical_data.TechnicalProperty]
) -> technical_data.TechnicalDataInput:
    return technical_data.TechnicalDataInput(
        general=technical_data.GeneralInformation(
            manufacturer_name=spec.manufacturer_name,
            manufacturer_product_designation=spec.product_designation,
            manufacturer_article_number=spec.article_number,
            manufacturer_order_code=spec.order_code,
        ),
        classifications=[
            technical_data.ProductClassification(
                classification_system=c.system, product_class_id=c.class_id,
                product_class_coded_name=c.coded_name, classification_system_version=c.version,
                classification_system_url=c.url, product_class_name=c.class_name,
            )
            for c in spec.classifications
        ],
        technical_properties=properties,
    )

