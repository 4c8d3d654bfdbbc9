"""The submodel builders against the published IDTA templates, and the own submodels against their concepts.

Template comparison walks the builder's output and the template side by side (as AAS JSON): every
emitted element must match a template element at the same idShortPath (``Name01`` matches the
template's ``Name``/``Name{00}``; list items match the list's item template) with the same model
type, semanticId and value type; mandatory template elements must be present and counts must stay
within the SMT/Cardinality. Two allowances, both from the specifications rather than the files:
template elements with the ``https://admin-shell.io/SMT/General/Arbitrary*`` or the example
``https://sample.com/`` semanticIds stand for any element of their model type, and the Time Series
record's ``Time`` may be any of the four time kinds of IDTA 02008-1-1.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aas_core3 import jsonization, verification
from aas_core3 import types as aas

from aas_models import concepts
from aas_models.builders import condition_monitoring, nameplate, operational_data, technical_data, time_series
from aas_models.builders.elements import FileRef, resolve

TEMPLATES = Path(__file__).resolve().parents[1].parent / "shared" / "idta-templates"
NAMEPLATE_FILE = "IDTA_02006-3-0-1_Template_Digital_Nameplate.json"
TECHNICAL_DATA_FILE = "IDTA_02003_2-0-1_Template_TechnicalData.json"
TIME_SERIES_FILE = "IDTA_02008-1-1-1_Template_TimeSeriesData.json"
CONTACT_FILE = "IDTA_02002-1-0-1_Template_ContactInformation.json"

WILDCARD_PREFIXES = ("https://admin-shell.io/SMT/General/Arbitrary", "https://sample.com/")
DROP_IN = "https://admin-shell.io/smt-dropin/smt-dropin-use/1/0"
TIME_KINDS = {
    time_series.UTC_TIME: "xs:dateTime",
    time_series.TAI_TIME: "xs:dateTime",
    time_series.RELATIVE_POINT_IN_TIME: "xs:long",
    time_series.RELATIVE_TIME_DURATION: "xs:long",
}
BOUNDS = {"One": (1, 1), "ZeroToOne": (0, 1), "ZeroToMany": (0, None), "OneToMany": (1, None)}
SM_ID = "urn:twinedge:sm:test:X:1.0"
LOGO = FileRef("/aasx/files/logo.png", "image/png")


# --- the comparison ---------------------------------------------------------------------------------

def _sid(element: dict[str, Any]) -> str | None:
    ref = element.get("semanticId")
    return "/".join(k["value"].strip() for k in ref["keys"]) if ref else None


def _card(element: dict[str, Any]) -> str:
    for q in element.get("qualifiers", []):
        if q["type"] in ("SMT/Cardinality", "Cardinality", "Multiplicity"):
            return str(q["value"])
    return "ZeroToMany"


def _base_name(id_short: str) -> str:
    return re.sub(r"(\{0+\}|__0+__|\[.*\])$", "", id_short)


def _is_wildcard(template: dict[str, Any]) -> bool:
    return (_sid(template) or "").startswith(WILDCARD_PREFIXES)


class Checker:
    def __init__(self, templates: Path) -> None:
        self.templates = templates
        contact = _load(templates / CONTACT_FILE)["submodels"][0]["submodelElements"]
        address = "https://admin-shell.io/zvei/nameplate/1/0/ContactInformations/AddressInformation"
        self.drop_ins: dict[str, list[dict[str, Any]]] = {
            address: next(e for e in contact if e["idShort"] == "ContactInformation")["value"]
        }
        self.problems: list[str] = []

    def children(self, template: dict[str, Any]) -> list[dict[str, Any]]:
        value: list[dict[str, Any]] = template.get("value") or []
        if isinstance(value, list) and value:
            return value
        supplemental = [_sid({"semanticId": r}) for r in template.get("supplementalSemanticIds", [])]
        if DROP_IN in supplemental:
            return self.drop_ins.get(_sid(template) or "", [])
        return []

    def submodel(self, emitted: aas.Submodel, template_file: str) -> list[str]:
        template = _load(self.templates / template_file)["submodels"][0]
        got = jsonization.to_jsonable(emitted)
        assert isinstance(got, dict)
        self.problems = []
        if got.get("kind") != "Instance":
            self.problems.append(f"submodel kind is {got.get('kind')}, expected Instance")
        if _sid(got) != _sid(template):
            self.problems.append(f"submodel semanticId {_sid(got)} != template {_sid(template)}")
        self.collection(got.get("submodelElements", []), template["submodelElements"], "")
        return self.problems

    def collection(self, emitted: list[dict[str, Any]], template: list[dict[str, Any]], path: str) -> None:
        named = {_base_name(t["idShort"]): t for t in template if not _is_wildcard(t)}
        counts: Counter[str] = Counter()
        for e in emitted:
            name = e.get("idShort", "")
            t = named.get(name) or named.get(re.sub(r"\d{2,3}$", "", name))
            if t is None:
                t = next((w for w in template if _is_wildcard(w) and w["modelType"] == e["modelType"]), None)
            if t is None:
                self.problems.append(f"{path}{name}: not in the template")
                continue
            counts[t["idShort"]] += 1
            self.element(e, t, f"{path}{name}")
        for t in template:
            if not _is_wildcard(t):  # a wildcard stands for any number of distinct elements
                self.bounds(counts[t["idShort"]], t, f"{path}{t['idShort']}")

    def bounds(self, count: int, template: dict[str, Any], path: str) -> None:
        low, high = BOUNDS[_card(template)]
        if count < low:
            self.problems.append(f"{path}: mandatory ({_card(template)}) but missing")
        if high is not None and count > high:
            self.problems.append(f"{path}: {count} instances, cardinality {_card(template)}")

    def element(self, e: dict[str, Any], t: dict[str, Any], path: str) -> None:
        if e["modelType"] != t["modelType"]:
            self.problems.append(f"{path}: {e['modelType']}, template has {t['modelType']}")
            return
        wildcard = _is_wildcard(t)
        if _sid(t) == time_series.RELATIVE_POINT_IN_TIME:
            if TIME_KINDS.get(_sid(e) or "") != e.get("valueType"):
                self.problems.append(f"{path}: time kind {_sid(e)} with {e.get('valueType')} is not IDTA 02008")
            return
        if wildcard:
            if not _sid(e):
                self.problems.append(f"{path}: an arbitrary element still needs its own semanticId")
        elif _sid(e) != _sid(t):
            self.problems.append(f"{path}: semanticId {_sid(e)} != template {_sid(t)}")
        if not wildcard and "valueType" in t and e.get("valueType") != t["valueType"]:
            self.problems.append(f"{path}: valueType {e.get('valueType')} != template {t['valueType']}")
        if e["modelType"] == "SubmodelElementCollection" and not wildcard:
            self.collection(e.get("value", []), self.children(t), path + ".")
        if e["modelType"] == "SubmodelElementList":
            self.list(e, t, path)

    def list(self, e: dict[str, Any], t: dict[str, Any], path: str) -> None:
        if e["typeValueListElement"] != t["typeValueListElement"]:
            self.problems.append(f"{path}: typeValueListElement differs from the template")
        if "semanticIdListElement" in t and _sid({"semanticId": e.get("semanticIdListElement")}) != _sid(
            {"semanticId": t["semanticIdListElement"]}
        ):
            self.problems.append(f"{path}: semanticIdListElement differs from the template")
        items = e.get("value", [])
        item_template = t["value"][0]
        self.bounds(len(items), item_template, f"{path}[]")
        for i, item in enumerate(items):
            self.element(item, item_template, f"{path}[{i}]")


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def checker() -> Checker:
    if not TEMPLATES.is_dir():
        pytest.skip(f"IDTA templates not found at {TEMPLATES} (../shared/idta-templates); template checks skipped")
    return Checker(TEMPLATES)


def _verify(element: aas.Class) -> list[str]:
    return [f"{error.path}: {error.cause}" for error in verification.verify(element)]


# --- inputs: minimal (mandatory only) and full (every optional field the builders support) ------------

def nameplate_minimal() -> nameplate.NameplateData:
    return nameplate.NameplateData(
        uri_of_the_product="urn:twinedge:asset:test",
        manufacturer_name="Example Press Machinery",
        manufacturer_product_designation="Hydraulic press 200 t",
        order_code_of_manufacturer="HP-200",
    )


def nameplate_full() -> nameplate.NameplateData:
    return nameplate.NameplateData(
        uri_of_the_product="https://example.com/products/HP-200/SN-1",
        manufacturer_name={"en": "Example Press Machinery", "ko": "예제 프레스"},
        manufacturer_product_designation="Hydraulic press 200 t",
        order_code_of_manufacturer="HP-200",
        address=nameplate.Address(
            company="Example Press Machinery", street="123 Gongdan-ro", zipcode="51500",
            city_town={"en": "Changwon", "ko": "창원"}, state_county="Gyeongnam", national_code="KR",
        ),
        manufacturer_product_root="Press", manufacturer_product_family="HP", manufacturer_product_type="HP-200",
        product_article_number_of_manufacturer="HP200-4C", serial_number="SN-1", year_of_construction="2024",
        date_of_manufacture=dt.date(2024, 5, 2), hardware_version="1.0", firmware_version="2.1",
        software_version="3.4.1", country_of_origin="KR", unique_facility_identifier="FAC-1",
        company_logo=LOGO,
        markings=[
            nameplate.Marking(
                name="CE", file=FileRef("/aasx/files/ce.png", "image/png"),
                designation_of_certificate_or_approval="2006/42/EC", issue_date=dt.date(2024, 1, 1),
                expiry_date=dt.date(2030, 1, 1), additional_texts=["0044", "Machinery directive"],
            ),
            nameplate.Marking(name="KC", file=FileRef("/aasx/files/kc.png", "image/png")),
        ],
    )


def technical_data_minimal() -> technical_data.TechnicalDataInput:
    return technical_data.TechnicalDataInput(
        general=technical_data.GeneralInformation("Example Press Machinery", "Hydraulic press", "HP200", "HP-200")
    )


def technical_data_full() -> technical_data.TechnicalDataInput:
    return technical_data.TechnicalDataInput(
        general=technical_data.GeneralInformation(
            "Example Press Machinery", {"en": "Hydraulic press", "ko": "유압 프레스"}, "HP200", "HP-200",
            company_logo=LOGO,
            product_images=[technical_data.ProductImage(LOGO, "front"), technical_data.ProductImage(LOGO)],
        ),
        classifications=[
            technical_data.ProductClassification(
                "ECLASS", "36-00-00-00", "3600000", classification_system_version="13.0",
                classification_system_url="https://eclass.eu", product_class_name="Machine tool",
            ),
            technical_data.ProductClassification("customer specific", "P-1", "P1"),
        ],
        technical_properties=[
            technical_data.TechnicalProperty("NominalPressForce", 2000.0, aas.DataTypeDefXSD.DOUBLE,
                                             "urn:twinedge:cd:hydraulic-press:1.0:NominalPressForce"),
            technical_data.TechnicalProperty("SupplyVoltage", 400, aas.DataTypeDefXSD.INT, "0173-1#02-AAA000#001",
                                             display_name="Supply voltage"),
            technical_data.TechnicalProperty("HasLightCurtain", True, aas.DataTypeDefXSD.BOOLEAN,
                                             "urn:twinedge:cd:hydraulic-press:1.0:HasLightCurtain"),
        ],
        further_information=technical_data.FurtherInformation(dt.date(2024, 6, 1), ["Values at 20 °C", "Draft"]),
    )


def time_series_input(segments: int = 2) -> time_series.TimeSeriesInput:
    od = "urn:twinedge:sm:press-01:OperationalData:1.0"
    names = ["OilTemperature", "CycleCounter"]
    return time_series.TimeSeriesInput(
        name="Signals of press-01",
        description={"en": "History", "ko": "이력"},
        variables=[
            time_series.Variable("OilTemperature", "urn:twinedge:cd:hp:1.0:OilTemperature", aas.DataTypeDefXSD.DOUBLE),
            time_series.Variable("CycleCounter", "urn:twinedge:cd:hp:1.0:CycleCounter", aas.DataTypeDefXSD.LONG),
        ],
        segments=[
            time_series.LinkedSegment(
                time_series.DEFAULT_ENDPOINT, time_series.timeseries_query(od, f"{n}.Value"), name=n, description=n
            )
            for n in names[:segments]
        ],
    )


# --- IDTA templates -------------------------------------------------------------------------------

@pytest.mark.parametrize("data", [nameplate_minimal(), nameplate_full()], ids=["minimal", "full"])
def test_nameplate_matches_template(checker: Checker, data: nameplate.NameplateData) -> None:
    submodel = nameplate.build_nameplate(data, SM_ID)
    assert checker.submodel(submodel, NAMEPLATE_FILE) == []
    assert _verify(submodel) == []


@pytest.mark.parametrize("data", [technical_data_minimal(), technical_data_full()], ids=["minimal", "full"])
def test_technical_data_matches_template(checker: Checker, data: technical_data.TechnicalDataInput) -> None:
    submodel = technical_data.build_technical_data(data, SM_ID)
    assert checker.submodel(submodel, TECHNICAL_DATA_FILE) == []
    assert _verify(submodel) == []


@pytest.mark.parametrize("segments", [0, 2])
def test_time_series_matches_template(checker: Checker, segments: int) -> None:
    submodel = time_series.build_time_series(time_series_input(segments), SM_ID)
    assert checker.submodel(submodel, TIME_SERIES_FILE) == []
    assert _verify(submodel) == []


def test_full_inputs_use_repetition_naming() -> None:
    plate = nameplate.build_nameplate(nameplate_full(), SM_ID)
    marking = resolve(plate, "Markings[0].MarkingAdditionalText02")
    assert isinstance(marking, aas.Property) and marking.value == "Machinery directive"
    tech = technical_data.build_technical_data(technical_data_full(), SM_ID)
    assert resolve(tech, "FurtherInformation.TextStatement02") is not None
    assert resolve(tech, "TechnicalPropertyAreas[0].SupplyVoltage") is not None
    ts = time_series.build_time_series(time_series_input(), SM_ID)
    assert resolve(ts, "Segments.LinkedSegment02.Query") is not None


def test_checker_finds_wrong_semantic_id_missing_element_and_excess(checker: Checker) -> None:
    """The comparison is not vacuous: each kind of deviation is reported."""
    submodel = nameplate.build_nameplate(nameplate_full(), SM_ID)
    broken = copy.deepcopy(submodel)
    elements = broken.submodel_elements or []
    serial = resolve(broken, "SerialNumber")
    assert isinstance(serial, aas.Property)
    serial.semantic_id = aas.Reference(aas.ReferenceTypes.EXTERNAL_REFERENCE,
                                       [aas.Key(aas.KeyTypes.GLOBAL_REFERENCE, "0112/2///61987#ABA951#008")])
    serial.value_type = aas.DataTypeDefXSD.INT
    broken.submodel_elements = [e for e in elements if e.id_short != "OrderCodeOfManufacturer"] + [
        copy.deepcopy(e) for e in elements if e.id_short == "CountryOfOrigin"
    ]
    problems = "\n".join(checker.submodel(broken, NAMEPLATE_FILE))
    assert "SerialNumber: semanticId" in problems
    assert "SerialNumber: valueType" in problems
    assert "OrderCodeOfManufacturer: mandatory" in problems
    assert "CountryOfOrigin: 2 instances" in problems


def test_time_series_query_round_trips() -> None:
    submodel_id = "urn:twinedge:sm:Presse 7/A:OperationalData:1.0"
    query = time_series.timeseries_query(submodel_id, "OilTemperature.Value")
    assert "=" not in query.split("&")[0].removeprefix("submodelId=")
    assert time_series.parse_timeseries_query(query) == (submodel_id, "OilTemperature.Value")
    with pytest.raises(ValueError, match="idShortPath"):
        time_series.parse_timeseries_query("submodelId=abc")


def test_time_series_rejects_a_variable_named_time() -> None:
    data = time_series.TimeSeriesInput("x", [time_series.Variable("Time", "urn:x", aas.DataTypeDefXSD.LONG)])
    with pytest.raises(ValueError, match="Time"):
        time_series.build_time_series(data, SM_ID)


# --- own submodels --------------------------------------------------------------------------------

SIGNALS = [
    operational_data.Signal("OilTemperature", aas.DataTypeDefXSD.DOUBLE, "urn:x:OilTemperature", "°C",
                            {"en": "Oil temperature", "ko": "유온"}),
    operational_data.Signal("PartQuality", aas.DataTypeDefXSD.STRING, "urn:x:PartQuality"),
]


def _semantic_ids(element: Any) -> set[str]:
    found: set[str] = set()
    for node in [element, *element.descend()]:
        ref = getattr(node, "semantic_id", None)
        if ref is not None:
            found.add(ref.keys[0].value)
    return found


def test_operational_data_structure() -> None:
    submodel = operational_data.build_operational_data(SIGNALS, SM_ID)
    assert _verify(submodel) == []
    assert submodel.kind == aas.ModellingKind.INSTANCE
    value = resolve(submodel, operational_data.value_path("OilTemperature"))
    assert isinstance(value, aas.Property)
    assert value.value_type == aas.DataTypeDefXSD.DOUBLE and value.semantic_id is not None
    assert value.semantic_id.keys[0].value == "urn:x:OilTemperature"
    unit = resolve(submodel, "OilTemperature.Unit")
    assert isinstance(unit, aas.Property) and unit.value == "°C"
    assert resolve(submodel, "PartQuality.Unit") is None
    for child in ("Quality", "Timestamp"):
        assert resolve(submodel, f"PartQuality.{child}") is not None


def test_condition_monitoring_structure_and_values() -> None:
    empty = condition_monitoring.build_condition_monitoring(SM_ID)
    assert _verify(empty) == []
    names = [e.id_short for e in empty.submodel_elements or []]
    assert names == ["HealthIndex", "AnomalyScore", "AnomalyThreshold", "FaultClass", "FaultProbability",
                     "RemainingUsefulLife", "SpcState", "ViolatedRules", "Timestamp", "ModelInfo"]
    t0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    filled = condition_monitoring.build_condition_monitoring(
        SM_ID,
        condition_monitoring.ConditionState(
            health_index=0.93, anomaly_score=0.2, anomaly_threshold=0.8, fault_class="normal",
            fault_probability=0.97, remaining_useful_life_h=1250.5, spc_state="out-of-control",
            violated_rules=("nelson-1", "nelson-5"), timestamp=t0,
        ),
        condition_monitoring.ModelInfo("iforest", "1.2.0", t0, t0 - dt.timedelta(days=30), t0, {"F1": 0.91}),
    )
    assert _verify(filled) == []
    rules = resolve(filled, "ViolatedRules")
    assert isinstance(rules, aas.Property) and rules.value == "nelson-1,nelson-5"
    trained = resolve(filled, "ModelInfo.TrainedAt")
    assert isinstance(trained, aas.Property) and trained.value == "2025-01-01T00:00:00Z"
    assert isinstance(resolve(filled, "ModelInfo.Metrics.F1"), aas.Property)
    with pytest.raises(ValueError, match="spc_state"):
        condition_monitoring.build_condition_monitoring(SM_ID, condition_monitoring.ConditionState(spc_state="ok"))


def test_own_semantic_ids_have_iec61360_concept_descriptions() -> None:
    cds = {cd.id: cd for cd in concepts.own_concept_descriptions()}
    emitted = _semantic_ids(operational_data.build_operational_data(SIGNALS, SM_ID)) | _semantic_ids(
        condition_monitoring.build_condition_monitoring(SM_ID)
    )
    own = {s for s in emitted if s.startswith(concepts.NAMESPACE)}
    assert own and own <= set(cds)
    assert all(s.startswith(concepts.NAMESPACE) for s in cds)
    for cd in cds.values():
        assert _verify(cd) == []
        (spec,) = cd.embedded_data_specifications or []
        assert spec.data_specification.type == aas.ReferenceTypes.EXTERNAL_REFERENCE
        (key,) = spec.data_specification.keys
        assert key.type == aas.KeyTypes.GLOBAL_REFERENCE
        assert key.value == "https://admin-shell.io/DataSpecificationTemplates/DataSpecificationIec61360/3"
        content = spec.data_specification_content
        assert isinstance(content, aas.DataSpecificationIEC61360)
        assert {t.language for t in content.preferred_name} >= {"en", "ko"}
        assert any(t.language == "en" for t in content.definition or [])


def test_own_namespace_layout() -> None:
    assert operational_data.SEMANTIC_ID == "https://twinedge.dev/aas/sm/OperationalData/1/0"
    assert concepts.OD_QUALITY.id == "https://twinedge.dev/aas/sm/OperationalData/1/0/Quality"
    assert condition_monitoring.SEMANTIC_ID == "https://twinedge.dev/aas/sm/ConditionMonitoring/1/0"
    assert concepts.CM_HEALTH_INDEX.id == "https://twinedge.dev/aas/sm/ConditionMonitoring/1/0/HealthIndex"


@pytest.mark.parametrize(
    ("value_type", "unit", "expected"),
    [
        (aas.DataTypeDefXSD.DOUBLE, "bar", aas.DataTypeIEC61360.REAL_MEASURE),
        (aas.DataTypeDefXSD.DOUBLE, None, aas.DataTypeIEC61360.REAL_COUNT),
        (aas.DataTypeDefXSD.LONG, None, aas.DataTypeIEC61360.INTEGER_COUNT),
        (aas.DataTypeDefXSD.INT, "V", aas.DataTypeIEC61360.INTEGER_MEASURE),
        (aas.DataTypeDefXSD.STRING, None, aas.DataTypeIEC61360.STRING),
        (aas.DataTypeDefXSD.DATE_TIME, None, aas.DataTypeIEC61360.TIMESTAMP),
        (aas.DataTypeDefXSD.BOOLEAN, None, aas.DataTypeIEC61360.BOOLEAN),
    ],
)
def test_iec61360_data_type_for_value_type(
    value_type: aas.DataTypeDefXSD, unit: str | None, expected: aas.DataTypeIEC61360
) -> None:
    assert concepts.data_type_for(value_type, unit) == expected
