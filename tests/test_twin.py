"""A whole twin from an equipment spec: verified by aas-core, the official checker and basyx."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from aas_core3 import types as aas
from aas_core3 import verification
from aas_test_engines import file as ate_file
from aas_test_engines.result import AasTestResult, Level
from basyx.aas.adapter.json import read_aas_json_file

from aas_models import ids
from aas_models.aasx import write_aasx
from aas_models.builders import operational_data, time_series
from aas_models.builders.elements import resolve
from aas_models.equipment import SPECS_DIR, EquipmentSpec, EquipmentSpecError, load_spec
from aas_models.jsonio import dump_json
from aas_models.package import AasPackage
from aas_models.twin import build_twin, shell_id_short, signal_address, submodel_id_for

PRESS = SPECS_DIR / "hydraulic-press.yaml"
ASSET = "press-01"


@pytest.fixture(scope="module")
def spec() -> EquipmentSpec:
    return load_spec(PRESS)


@pytest.fixture(scope="module")
def twin(spec: EquipmentSpec) -> aas.Environment:
    return build_twin(spec, ASSET, serial_number="SN-2024-0001", year_of_construction="2024")


def _submodel(env: aas.Environment, submodel_id: str) -> aas.Submodel:
    return next(sm for sm in env.submodels or [] if sm.id == submodel_id)


def _problems(result: AasTestResult) -> list[str]:
    lines: list[str] = []
    if result.level != Level.INFO:
        lines.append(f"{result.level.name}: {result.message}")
    for sub in result.sub_results:
        lines.extend(_problems(sub))
    return lines


def test_press_spec_has_the_expected_signals(spec: EquipmentSpec) -> None:
    names = {s.name: (s.unit, s.value_type) for s in spec.signals}
    assert names["RamPosition"] == ("mm", "xs:double")
    assert names["HydraulicPressure"] == ("bar", "xs:double")
    assert names["PressForce"] == ("kN", "xs:double")
    assert names["OilTemperature"] == ("°C", "xs:double")
    assert names["MotorCurrent"] == ("A", "xs:double")
    assert names["Vibration"] == ("mm/s", "xs:double")
    assert names["CycleCounter"] == (None, "xs:long")
    assert names["CycleTime"] == ("s", "xs:double")
    assert names["PartQuality"] == (None, "xs:string")


def test_twin_verifies(twin: aas.Environment) -> None:
    assert [f"{e.path}: {e.cause}" for e in verification.verify(twin)] == []


def test_shell_lists_submodels_and_asset(twin: aas.Environment) -> None:
    (shell,) = twin.asset_administration_shells or []
    assert shell.id == ids.shell_id(ASSET)
    assert shell.asset_information.asset_kind == aas.AssetKind.INSTANCE
    assert shell.asset_information.global_asset_id == ids.global_asset_id(ASSET)
    referenced = [ref.keys[0].value for ref in shell.submodels or []]
    assert referenced == [sm.id for sm in twin.submodels or []]
    assert [sm.id_short for sm in twin.submodels or []] == [
        "Nameplate", "TechnicalData", "OperationalData", "TimeSeries", "ConditionMonitoring"
    ]
    for sm in twin.submodels or []:
        assert sm.id == submodel_id_for(ASSET, sm.id_short or "")
    serial = resolve(_submodel(twin, submodel_id_for(ASSET, "Nameplate")), "SerialNumber")
    assert isinstance(serial, aas.Property) and serial.value == "SN-2024-0001"


def test_each_signal_is_reachable_at_its_address(spec: EquipmentSpec, twin: aas.Environment) -> None:
    cds = {cd.id: cd for cd in twin.concept_descriptions or []}
    for signal in spec.signals:
        submodel_id, path = signal_address(ASSET, signal.name)
        assert path == f"{signal.name}.Value"
        element = resolve(_submodel(twin, submodel_id), path)
        assert isinstance(element, aas.Property), signal.name
        assert element.value_type.value == signal.value_type
        assert element.semantic_id is not None
        cd = cds[element.semantic_id.keys[0].value]
        content = (cd.embedded_data_specifications or [])[0].data_specification_content
        assert isinstance(content, aas.DataSpecificationIEC61360)
        assert content.unit == signal.unit


def test_time_series_segments_point_at_signal_values(spec: EquipmentSpec, twin: aas.Environment) -> None:
    ts = _submodel(twin, submodel_id_for(ASSET, "TimeSeries"))
    od = _submodel(twin, submodel_id_for(ASSET, "OperationalData"))
    for i, signal in enumerate(spec.signals):
        endpoint = resolve(ts, f"Segments.LinkedSegment{i + 1:02d}.Endpoint")
        query = resolve(ts, f"Segments.LinkedSegment{i + 1:02d}.Query")
        assert isinstance(endpoint, aas.Property) and endpoint.value == time_series.DEFAULT_ENDPOINT
        assert isinstance(query, aas.Property) and query.value is not None
        submodel_id, path = time_series.parse_timeseries_query(query.value)
        assert (submodel_id, path) == signal_address(ASSET, signal.name)
        assert resolve(od, path) is not None
        variable = resolve(ts, f"Metadata.Record.{signal.name}")
        value = resolve(od, path)
        assert isinstance(variable, aas.Property) and isinstance(value, aas.Property)
        assert variable.semantic_id is not None and value.semantic_id is not None
        assert variable.semantic_id.keys[0].value == value.semantic_id.keys[0].value
        assert variable.value_type == value.value_type


def test_every_semantic_id_of_own_and_spec_concepts_has_a_concept_description(twin: aas.Environment) -> None:
    cd_ids = {cd.id for cd in twin.concept_descriptions or []}
    assert len(cd_ids) == len(twin.concept_descriptions or [])
    for sm in twin.submodels or []:
        for node in [sm, *sm.descend()]:
            ref = getattr(node, "semantic_id", None)
            if ref is None:
                continue
            value = ref.keys[0].value
            if value.startswith(("https://twinedge.dev/aas/", "urn:twinedge:")):
                assert value in cd_ids, value


def test_json_passes_aas_test_engines_and_basyx(twin: aas.Environment) -> None:
    text = dump_json(twin).decode("utf-8")
    result = ate_file.check_json_data(json.loads(text))
    assert result.ok(), _problems(result)
    assert _problems(result) == []  # not even warnings
    store = read_aas_json_file(io.StringIO(text), failsafe=False)
    assert len(store) == 1 + 5 + len(twin.concept_descriptions or [])


def test_aasx_passes_aas_test_engines(twin: aas.Environment) -> None:
    data = write_aasx(AasPackage(twin))
    result = ate_file.check_aasx_data(zipfile.ZipFile(io.BytesIO(data)))
    assert result.ok(), _problems(result)


def test_build_is_deterministic(spec: EquipmentSpec) -> None:
    assert dump_json(build_twin(spec, "Presse 7/A 프레스")) == dump_json(build_twin(spec, "Presse 7/A 프레스"))


def test_unicode_asset_and_custom_base(spec: EquipmentSpec) -> None:
    env = build_twin(spec, "Presse 7/A 프레스", id_base="https://acme.example/aas/",
                     timeseries_endpoint="http://twin.acme.example:8081/api/v3.0/timeseries")
    assert [f"{e.path}: {e.cause}" for e in verification.verify(env)] == []
    (shell,) = env.asset_administration_shells or []
    assert shell.id == "https://acme.example/aas/aas/Presse%207%2FA%20%ED%94%84%EB%A0%88%EC%8A%A4"
    assert shell.id_short == shell_id_short("Presse 7/A 프레스") == "Presse_7_A____"
    assert ate_file.check_json_data(json.loads(dump_json(env))).ok()


def test_spec_with_semantic_ids_and_conflicts() -> None:
    base = {
        "equipment_type": "test-rig", "manufacturer_name": "M", "product_designation": "Rig",
        "order_code": "O", "article_number": "A",
        "technical_properties": [
            {"name": "RatedPower", "value": 5.5, "unit": "kW", "description": "Rated power",
             "semantic_id": "0173-1#02-AAA001#001"},
            {"name": "Enabled", "value": True, "description": "Enabled"},
        ],
        "signals": [{"name": "Speed", "value_type": "xs:double", "unit": "rpm", "description": "Speed",
                     "semantic_id": "0173-1#02-AAA002#001"}],
    }
    spec = EquipmentSpec.model_validate(base)
    env = build_twin(spec, "rig-1")
    assert [f"{e.path}: {e.cause}" for e in verification.verify(env)] == []
    assert {"0173-1#02-AAA001#001", "0173-1#02-AAA002#001"} <= {cd.id for cd in env.concept_descriptions or []}
    enabled = resolve(_submodel(env, submodel_id_for("rig-1", "TechnicalData")), "TechnicalPropertyAreas[0].Enabled")
    assert isinstance(enabled, aas.Property) and enabled.value == "true"
    assert enabled.value_type == aas.DataTypeDefXSD.BOOLEAN

    conflicting = dict(base, signals=[{"name": "Power", "value_type": "xs:double", "unit": "W",
                                       "description": "Power", "semantic_id": "0173-1#02-AAA001#001"}])
    with pytest.raises(EquipmentSpecError, match=r"technical_properties\[0\]\.semantic_id.* at signals\[0\]"):
        build_twin(EquipmentSpec.model_validate(conflicting), "rig-1")


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda t: t.replace("value_type: xs:long", "value_type: long"), "signals[6].value_type"),
        (lambda t: t.replace("name: OilTemperature", "name: Oil Temperature"), "signals[3].name"),
        (lambda t: t.replace("name: CycleTime", "name: CycleCounter"), "signals"),
        (lambda t: t.replace("    value: 400\n", "    value: four hundred\n"), "technical_properties[12].value"),
        (lambda t: t.replace("order_code: HP-200-4C-800\n", ""), "order_code"),
        (lambda t: t.replace("equipment_type: hydraulic-press", "equipment_type: Hydraulic Press"),
         "equipment_type"),
        (lambda t: t + "colour: red\n", "colour"),
        (lambda t: t.replace("{en: Stroke, ko: 행정}", "{ko: 행정}"), "technical_properties[1].preferred_name"),
    ],
)
def test_spec_errors_name_the_field(tmp_path: Path, mutate: object, where: str) -> None:
    assert callable(mutate)
    text = PRESS.read_text(encoding="utf-8")
    changed = mutate(text)
    assert changed != text
    path = tmp_path / "press.yaml"
    path.write_text(changed, encoding="utf-8")
    with pytest.raises(EquipmentSpecError) as info:
        load_spec(path)
    assert any(p.where.startswith(where) and p.file == str(path) for p in info.value.problems), str(info.value)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("equipment_type: x\nsignals: [\n", encoding="utf-8")
    with pytest.raises(EquipmentSpecError, match="line"):
        load_spec(path)
    with pytest.raises(EquipmentSpecError, match="cannot read"):
        load_spec(tmp_path / "missing.yaml")


def test_operational_value_path_is_the_documented_one() -> None:
    assert operational_data.value_path("OilTemperature") == "OilTemperature.Value"
    with pytest.raises(KeyError):
        submodel_id_for(ASSET, "Nope")
