#!/usr/bin/env python3
"""Benchmark AAS (de)serialisation: TwinEdge's aas_models I/O against basyx-python-sdk 2.2.

The script first generates a deterministic (seeded) AAS 3.0 environment of about ``--size-mb`` MB of
pretty-printed JSON that looks like factory data: machine shells with Nameplate, TechnicalData,
OperationalData (live values plus time series), HandoverDocumentation and BillOfMaterial submodels,
and IEC 61360 concept descriptions for every semantic ID used. It is built from aas_core3.types
objects and checked with aas_core3.verification, so the input is valid metamodel 3.0.

It then times, in this one process, best and median of ``--repeat`` runs (time.perf_counter):

* JSON: project parse_json (strict=False / strict=True / strict + verify), dump_json compact and
  pretty; basyx read_aas_json_file(failsafe=False), object_store_to_json compact and indent=2.
* XML (optional): project parse_xml / dump_xml; basyx read_aas_xml_file / write_aas_xml_file.
  basyx 2.2 implements metamodel 3.1, whose XML namespace is https://admin-shell.io/aas/3/1, so
  basyx is given the same document with the namespace renamed.
* AASX (optional): project read_aasx / write_aasx; basyx AASXReader / AASXWriter (JSON spec part).

Finally it checks interoperability (does each library read what the other writes?) and prints a
table, or one JSON object with ``--json``. Progress goes to stderr. Timings are figures to read,
not assertions.

Run from the repository root, e.g.::

    python bench/aas_serde.py                      # 10 MB, 5 runs, JSON + XML + AASX
    python bench/aas_serde.py --size-mb 2 --repeat 3 --formats json
    python bench/aas_serde.py --json > bench.json
    python bench/aas_serde.py --profile json-parse-strict   # cProfile one project operation
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import datetime as dt
import gc
import importlib.metadata
import io
import json
import platform
import pstats
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson
from aas_core3 import jsonization, verification
from aas_core3 import types as aas
from basyx.aas import model as basyx_model
from basyx.aas.adapter import aasx as basyx_aasx
from basyx.aas.adapter import json as basyx_json
from basyx.aas.adapter import xml as basyx_xml

from aas_models.aasx import read_aasx, write_aasx
from aas_models.jsonio import dump_json, parse_json
from aas_models.package import AasPackage, PackagePart
from aas_models.xmlio import dump_xml, parse_xml

MB = 1_000_000  # sizes and throughputs are in decimal megabytes

IEC61360_TEMPLATE = "https://admin-shell.io/DataSpecificationTemplates/DataSpecificationIec61360/3"
NS_AAS_30 = b"https://admin-shell.io/aas/3/0"
NS_AAS_31 = b"https://admin-shell.io/aas/3/1"

XSD = aas.DataTypeDefXSD
IEC = aas.DataTypeIEC61360

T = TypeVar("T")
BasyxStore = basyx_model.DictIdentifiableStore[basyx_model.Identifiable]


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# Concept catalogue: every semantic ID in the generated data names one of these concepts, and each
# becomes a ConceptDescription with an IEC 61360 data specification.
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Concept:
    id_short: str
    en: str
    de: str
    vt: XSD = XSD.STRING
    iec: IEC | None = IEC.STRING
    unit: str | None = None
    lo: float = 0.0
    hi: float = 100.0
    digits: int = 2
    choices: tuple[str, ...] = ()
    category: str | None = "PROPERTY"
    cd_id: str = ""


def _c(id_short: str, en: str, de: str = "", **kw: Any) -> Concept:
    return Concept(id_short, en, de or en, **kw)


_COLL = {"vt": XSD.STRING, "iec": None, "category": None}
_DOC = {"vt": XSD.STRING, "iec": IEC.FILE, "category": "DOCUMENT"}
_REF = {"vt": XSD.STRING, "iec": IEC.IRI, "category": "REFERENCE"}

CORE_CONCEPTS: list[Concept] = [
    # Nameplate (IDTA 02006-2-0)
    _c("URIOfTheProduct", "URI of the product", "URI des Produkts", vt=XSD.ANY_URI, iec=IEC.IRI,
       category=None),
    _c("ManufacturerName", "manufacturer name", "Herstellername", iec=IEC.STRING_TRANSLATABLE),
    _c("ManufacturerProductDesignation", "manufacturer product designation", "Herstellerproduktbezeichnung",
       iec=IEC.STRING_TRANSLATABLE),
    _c("ManufacturerProductFamily", "manufacturer product family", "Herstellerproduktfamilie",
       iec=IEC.STRING_TRANSLATABLE),
    _c("ContactInformation", "contact information", "Kontaktinformation", **_COLL),
    _c("RoleOfContactPerson", "role of contact person", "Rolle der Kontaktperson",
       choices=("Commercial", "Technical", "Service", "Sales")),
    _c("NationalCode", "national code", "Ländercode", iec=IEC.STRING_TRANSLATABLE),
    _c("CityTown", "city/town", "Ort", iec=IEC.STRING_TRANSLATABLE),
    _c("Street", "street", "Straße", iec=IEC.STRING_TRANSLATABLE),
    _c("Zipcode", "ZIP code", "Postleitzahl", iec=IEC.STRING_TRANSLATABLE),
    _c("Phone", "phone", "Telefon", **_COLL),
    _c("TelephoneNumber", "telephone number", "Telefonnummer", iec=IEC.STRING_TRANSLATABLE),
    _c("TypeOfTelephone", "type of telephone", "Art des Telefons", choices=("Office", "Mobile", "Fax")),
    _c("Email", "e-mail", "E-Mail", **_COLL),
    _c("EmailAddress", "e-mail address", "E-Mail-Adresse"),
    _c("SerialNumber", "serial number", "Seriennummer"),
    _c("YearOfConstruction", "year of construction", "Baujahr"),
    _c("DateOfManufacture", "date of manufacture", "Herstellungsdatum", vt=XSD.DATE, iec=IEC.DATE),
    _c("HardwareVersion", "hardware version", "Hardwareversion"),
    _c("FirmwareVersion", "firmware version", "Firmwareversion"),
    _c("CountryOfOrigin", "country of origin", "Ursprungsland", choices=("DE", "AT", "CH", "IT", "JP", "US")),
    _c("Markings", "markings", "Kennzeichnungen", **_COLL),
    _c("Marking", "marking", "Kennzeichnung", **_COLL),
    _c("MarkingName", "marking name", "Kennzeichnungsname", choices=("CE", "UKCA", "cULus", "RoHS", "WEEE")),
    _c("MarkingFile", "marking file", "Kennzeichnungsdatei", **_DOC),
    # Technical data (IDTA 02003-1-2)
    _c("GeneralInformation", "general information", "Allgemeine Informationen", **_COLL),
    _c("ManufacturerArticleNumber", "manufacturer article number", "Herstellerartikelnummer"),
    _c("ManufacturerOrderCode", "manufacturer order code", "Herstellerbestellnummer"),
    _c("ProductImage", "product image", "Produktbild", **_DOC),
    _c("ProductClassifications", "product classifications", "Produktklassifikationen", **_COLL),
    _c("ProductClassificationItem", "product classification item", "Produktklassifikationseintrag", **_COLL),
    _c("ProductClassificationSystem", "classification system", "Klassifikationssystem",
       choices=("ECLASS", "IEC CDD", "ETIM")),
    _c("ClassificationSystemVersion", "classification system version", "Version des Klassifikationssystems",
       choices=("13.0", "14.0", "9.0")),
    _c("ProductClassId", "product class ID", "Produktklassen-ID"),
    _c("TechnicalProperties", "technical properties", "Technische Eigenschaften", **_COLL),
    _c("Electrical", "electrical properties", "Elektrische Eigenschaften", **_COLL),
    _c("Mechanical", "mechanical properties", "Mechanische Eigenschaften", **_COLL),
    _c("Environmental", "environmental conditions", "Umgebungsbedingungen", **_COLL),
    _c("RatedVoltage", "rated voltage", "Bemessungsspannung", vt=XSD.DOUBLE, iec=IEC.REAL_MEASURE, unit="V",
       lo=24, hi=690, digits=1),
    _c("RatedCurrent", "rated current", "Bemessungsstrom", vt=XSD.DOUBLE, iec=IEC.REAL_MEASURE, unit="A",
       lo=1, hi=250, digits=2),
    _c("RatedPower", "rated power", "Bemessungsleistung", vt=XSD.DECIMAL, iec=IEC.REAL_MEASURE, unit="kW",
       lo=0.5, hi=120, digits=3),
    _c("SupplyVoltageRange", "supply voltage range", "Versorgungsspannungsbereich", vt=XSD.DOUBLE,
       iec=IEC.REAL_MEASURE, unit="V", lo=200, hi=480, digits=0),
    _c("ProtectionClass", "degree of protection", "Schutzart", choices=("IP20", "IP54", "IP65", "IP67")),
    _c("Weight", "weight", "Gewicht", vt=XSD.DECIMAL, iec=IEC.REAL_MEASURE, unit="kg", lo=5, hi=25000),
    _c("Width", "width", "Breite", vt=XSD.INT, iec=IEC.INTEGER_MEASURE, unit="mm", lo=300, hi=9000),
    _c("Height", "height", "Höhe", vt=XSD.INT, iec=IEC.INTEGER_MEASURE, unit="mm", lo=300, hi=4000),
    _c("Depth", "depth", "Tiefe", vt=XSD.INT, iec=IEC.INTEGER_MEASURE, unit="mm", lo=300, hi=6000),
    _c("OperatingTemperature", "operating temperature", "Betriebstemperatur", vt=XSD.DOUBLE,
       iec=IEC.REAL_MEASURE, unit="°C", lo=-20, hi=60, digits=0),
    _c("StorageTemperature", "storage temperature", "Lagertemperatur", vt=XSD.DOUBLE, iec=IEC.REAL_MEASURE,
       unit="°C", lo=-40, hi=80, digits=0),
    _c("RelativeHumidityMax", "maximum relative humidity", "Maximale relative Luftfeuchte", vt=XSD.FLOAT,
       iec=IEC.REAL_MEASURE, unit="%", lo=60, hi=95, digits=0),
    _c("FurtherInformation", "further information", "Weitere Informationen", **_COLL),
    _c("TextStatement", "text statement", "Textaussage", iec=IEC.STRING_TRANSLATABLE),
    _c("ValidDate", "valid date", "Gültigkeitsdatum", vt=XSD.DATE, iec=IEC.DATE),
    # Operational data (TwinEdge)
    _c("CurrentState", "current state", "Aktueller Zustand", **_COLL),
    _c("MachineState", "machine state", "Maschinenzustand",
       choices=("Running", "Idle", "Setup", "Fault", "Maintenance")),
    _c("Running", "running", "In Betrieb", vt=XSD.BOOLEAN, iec=IEC.BOOLEAN),
    _c("PartCount", "part count", "Stückzahl", vt=XSD.LONG, iec=IEC.INTEGER_COUNT, lo=0, hi=5_000_000),
    _c("OperatingHours", "operating hours", "Betriebsstunden", vt=XSD.DECIMAL, iec=IEC.REAL_MEASURE, unit="h",
       lo=10, hi=60000, digits=1),
    _c("LastUpdate", "last update", "Letzte Aktualisierung", vt=XSD.DATE_TIME, iec=IEC.TIMESTAMP),
    _c("Temperature", "temperature", "Temperatur", vt=XSD.DOUBLE, iec=IEC.REAL_MEASURE, unit="°C",
       lo=18, hi=85, digits=2),
    _c("Pressure", "pressure", "Druck", vt=XSD.FLOAT, iec=IEC.REAL_MEASURE, unit="bar", lo=0.5, hi=12),
    _c("Vibration", "vibration velocity", "Schwinggeschwindigkeit", vt=XSD.DOUBLE, iec=IEC.REAL_MEASURE,
       unit="mm/s", lo=0.1, hi=11, digits=3),
    _c("PowerConsumption", "power consumption", "Leistungsaufnahme", vt=XSD.DOUBLE, iec=IEC.REAL_MEASURE,
       unit="kW", lo=0.2, hi=90, digits=3),
    _c("Speed", "speed", "Drehzahl", vt=XSD.INT, iec=IEC.INTEGER_MEASURE, unit="1/min", lo=0, hi=24000),
    _c("ActiveProgram", "active program", "Aktives Programm", **_REF),
    _c("TemperatureTrend", "temperature trend", "Temperaturverlauf", **_COLL),
    _c("Measurements", "measurements", "Messwerte", **_COLL),
    _c("Measurement", "measurement", "Messung", **_COLL),
    _c("Timestamp", "timestamp", "Zeitstempel", vt=XSD.DATE_TIME, iec=IEC.TIMESTAMP),
    _c("Alarms", "alarms", "Alarme", **_COLL),
    _c("Alarm", "alarm", "Alarm", **_COLL),
    _c("AlarmCode", "alarm code", "Alarmcode"),
    _c("Severity", "severity", "Schweregrad", vt=XSD.INT, iec=IEC.INTEGER_COUNT, lo=1, hi=1000),
    _c("AlarmText", "alarm text", "Alarmtext", iec=IEC.STRING_TRANSLATABLE),
    _c("Acknowledged", "acknowledged", "Quittiert", vt=XSD.BOOLEAN, iec=IEC.BOOLEAN),
    # Handover documentation (VDI 2770 / IDTA 02004)
    _c("Document", "document", "Dokument", **_COLL),
    _c("DocumentId", "document ID", "Dokument-ID"),
    _c("DocumentClassId", "document class ID", "Dokumentklassen-ID",
       choices=("01-01", "02-01", "02-02", "03-01", "03-02")),
    _c("DocumentVersion", "document version", "Dokumentversion", **_COLL),
    _c("Language", "language", "Sprache", choices=("en", "de")),
    _c("Version", "version", "Version"),
    _c("Title", "title", "Titel", iec=IEC.STRING_TRANSLATABLE),
    _c("Summary", "summary", "Zusammenfassung", iec=IEC.STRING_TRANSLATABLE),
    _c("StatusSetDate", "status set date", "Statusdatum", vt=XSD.DATE, iec=IEC.DATE),
    _c("StatusValue", "status value", "Statuswert", choices=("Released", "InReview")),
    _c("OrganizationName", "organization name", "Organisationsname"),
    _c("DigitalFile", "digital file", "Digitale Datei", **_DOC),
    _c("PreviewFile", "preview file", "Vorschaudatei", **_DOC),
    # Bill of material (IDTA 02011 hierarchical structures)
    _c("EntryNode", "entry node", "Einstiegsknoten", **_COLL),
    _c("Node", "node", "Knoten", **_COLL),
    _c("HasPart", "has part", "Hat Teil", **_REF),
    _c("BulkCount", "bulk count", "Anzahl", vt=XSD.UNSIGNED_INT, iec=IEC.INTEGER_COUNT, lo=1, hi=24),
    _c("ArcheType", "archetype", "Archetyp", choices=("Full", "OneDown", "OneUp")),
    _c("SameAs", "same as", "Gleich wie", **_REF),
]

#: Machine types and the vendor-specific parameters of their TechnicalProperties.
MACHINE_TYPES: dict[str, list[Concept]] = {
    "CncMill": [
        _c("SpindleSpeedMax", "maximum spindle speed", vt=XSD.INT, iec=IEC.INTEGER_MEASURE, unit="1/min",
           lo=8000, hi=30000),
        _c("SpindlePower", "spindle power", vt=XSD.DOUBLE, iec=IEC.REAL_MEASURE, unit="kW", lo=5, hi=60),
        _c("TravelX", "travel X axis", vt=XSD.INT, iec=IEC.INTEGER_MEASURE, unit="mm", lo=500, hi=3000),
        _c("TravelY", "travel Y axis", vt=XSD.INT, iec=IEC.INTEGER_MEASURE, unit="mm", lo=400, hi=2000),
        _c("TravelZ", "travel Z axis", vt=XSD.INT, iec=IEC.INTEGER_MEASURE, unit="mm", lo=400, hi=1500),
        _c("ToolMagazineCapacity", "tool magazine capacity", vt=XSD.INT, iec=IEC.INTEGER_COUNT, lo=20, hi=120),
        _c("RapidTraverse", "rapid traverse", vt=XSD.DOUBLE, iec=IEC.REAL_MEASURE, unit="m/min", lo=30, hi=60),
        _c("PositioningAccuracy", "positioning accuracy", vt=XSD.DOUBLE, iec=IEC.REAL_MEASURE, unit="µm",
           lo=1, hi=8, digits=1),
        _c("ControlSystem", "control system", choices=("SINUMERIK 840D sl", "TNC 640", "FANUC 31i-B")),
    ],
    "Lathe": [
        _c("TurningDiameterMax", "maximum turning diameter", vt=XSD.INT, iec=IEC.INTEGER_MEASURE, unit="mm",
           lo=200, hi=900),
        _c("TurningLengthMax", "maximum turning length", vt=XSD.INT, iec=IEC.INTEGER_MEASURE, unit="mm",
           lo=300, hi=3000),
        _c("BarCapacity", "bar capacity", vt=XSD.INT, iec=IEC.INTEGER_MEASURE, unit="mm", lo=42, hi=102),
        _c("MainSpindlePower", "main spindle power", vt=XSD.DOUBLE, iec=IEC.REAL_MEASURE, unit="kW",
           lo=11, hi=45),
        _c("TurretStations", "turret stations", vt=XSD.INT, iec=IEC.INTEGER_COUNT, lo=8, hi=24),
        _c("SubSpindle", "sub spindle", vt=XSD.BOOLEAN, iec=IEC.BOOLEAN),
    ],
    "Robot": [
        _c("Payload", "payload", vt=XSD.DOUBLE, iec=IEC.REAL_MEASURE, unit="kg", lo=3, hi=500, digits=1),
        _c("Reach", "reach", vt=XSD.INT, iec=IEC.INTEGER_MEASURE, unit="mm", lo=500, hi=3500),
        _c("Repeatability", "pose repeatability", vt=XSD.DOUBLE, iec=IEC.REAL_MEASURE, unit="mm",
           lo=0.01, hi=0.1, digits=3),
        _c("NumberOfAxes", "number of axes", vt=XSD.INT, iec=IEC.INTEGER_COUNT, lo=4, hi=7),
        _c("MountingPosition", "mounting position", choices=("Floor", "Ceiling", "Wall", "Angle")),
        _c("CleanroomClass", "cleanroom class", choices=("ISO 4", "ISO 5", "none")),
    ],
    "Conveyor": [
        _c("BeltSpeed", "belt speed", vt=XSD.DOUBLE, iec=IEC.REAL_MEASURE, unit="m/s", lo=0.1, hi=3),
        _c("BeltWidth", "belt width", vt=XSD.INT, iec=IEC.INTEGER_MEASURE, unit="mm", lo=200, hi=1600),
        _c("ConveyorLength", "conveyor length", vt=XSD.DOUBLE, iec=IEC.REAL_MEASURE, unit="m", lo=1, hi=80),
        _c("LoadPerMetreMax", "maximum load per metre", vt=XSD.DOUBLE, iec=IEC.REAL_MEASURE, unit="kg/m",
           lo=5, hi=200),
    ],
    "Press": [
        _c("PressForce", "press force", vt=XSD.DOUBLE, iec=IEC.REAL_MEASURE, unit="kN", lo=250, hi=25000),
        _c("StrokeLength", "stroke length", vt=XSD.INT, iec=IEC.INTEGER_MEASURE, unit="mm", lo=50, hi=800),
        _c("StrokesPerMinute", "strokes per minute", vt=XSD.INT, iec=IEC.INTEGER_MEASURE, unit="1/min",
           lo=10, hi=1200),
        _c("DieHeight", "die height", vt=XSD.INT, iec=IEC.INTEGER_MEASURE, unit="mm", lo=200, hi=1200),
    ],
    "InjectionMoulding": [
        _c("ClampingForce", "clamping force", vt=XSD.DOUBLE, iec=IEC.REAL_MEASURE, unit="kN", lo=250,
           hi=40000),
        _c("ShotWeightMax", "maximum shot weight", vt=XSD.DOUBLE, iec=IEC.REAL_MEASURE, unit="g", lo=20,
           hi=8000),
        _c("ScrewDiameter", "screw diameter", vt=XSD.INT, iec=IEC.INTEGER_MEASURE, unit="mm", lo=18, hi=120),
        _c("InjectionPressureMax", "maximum injection pressure", vt=XSD.DOUBLE, iec=IEC.REAL_MEASURE,
           unit="bar", lo=1200, hi=2500),
        _c("HeatingZones", "heating zones", vt=XSD.INT, iec=IEC.INTEGER_COUNT, lo=3, hi=12),
    ],
    "Compressor": [
        _c("FreeAirDelivery", "free air delivery", vt=XSD.DOUBLE, iec=IEC.REAL_MEASURE, unit="m³/min",
           lo=0.5, hi=60),
        _c("MaxOperatingPressure", "maximum operating pressure", vt=XSD.DOUBLE, iec=IEC.REAL_MEASURE,
           unit="bar", lo=7, hi=15),
        _c("MotorPower", "motor power", vt=XSD.DOUBLE, iec=IEC.REAL_MEASURE, unit="kW", lo=4, hi=315),
        _c("SoundPressureLevel", "sound pressure level", vt=XSD.DOUBLE, iec=IEC.REAL_MEASURE, unit="dB(A)",
           lo=60, hi=80, digits=1),
    ],
    "Pump": [
        _c("FlowRate", "flow rate", vt=XSD.DOUBLE, iec=IEC.REAL_MEASURE, unit="m³/h", lo=1, hi=900),
        _c("Head", "head", vt=XSD.DOUBLE, iec=IEC.REAL_MEASURE, unit="m", lo=5, hi=250),
        _c("Efficiency", "efficiency", vt=XSD.DOUBLE, iec=IEC.REAL_MEASURE, unit="%", lo=40, hi=92, digits=1),
        _c("Medium", "medium", choices=("Water", "Coolant", "Oil", "Emulsion")),
    ],
}

SUBMODEL_SEMANTICS = {
    "Nameplate": "https://admin-shell.io/idta/nameplate/2/0/Nameplate",
    "TechnicalData": "https://admin-shell.io/ZVEI/TechnicalData/Submodel/1/2",
    "OperationalData": "https://twinedge.example.com/sm/OperationalData/1/0",
    "HandoverDocumentation": "0173-1#01-AHF578#001",
    "BillOfMaterial": "https://admin-shell.io/idta/HierarchicalStructures/1/0/Submodel",
}

VENDORS = [
    ("Hartmann Werkzeugmaschinen GmbH", "hartmann-wzm.example", "Stuttgart", "Heilbronner Straße 120", "70191",
     "DE", "+49 711 4800-0"),
    ("Kellner Automation AG", "kellner-automation.example", "Linz", "Industriezeile 36", "4020", "AT",
     "+43 732 9000-0"),
    ("Brunner Fördertechnik GmbH", "brunner-foerdertechnik.example", "Augsburg", "Haunstetter Straße 225",
     "86161", "DE", "+49 821 5430-0"),
    ("Meccanica Ferraresi S.p.A.", "meccanica-ferraresi.example", "Bologna", "Via Emilia Levante 44", "40139",
     "IT", "+39 051 600-1200"),
    ("Nakamura Robotics K.K.", "nakamura-robotics.example", "Nagoya", "3-12 Meieki", "450-0002", "JP",
     "+81 52 123-4567"),
    ("Lakeside Compressors Inc.", "lakeside-compressors.example", "Milwaukee", "2200 W Lincoln Ave", "53215",
     "US", "+1 414 555-0142"),
]

#: Supplementary files shared by the generated File elements (AASX packages carry them).
DOCUMENT_FILES = [f"/aasx/files/{name}" for name in (
    "operating_manual_en.pdf", "operating_manual_de.pdf", "maintenance_instructions.pdf", "spare_parts_list.pdf",
    "declaration_of_conformity.pdf", "circuit_diagram.pdf", "safety_data_sheet.pdf", "installation_guide.pdf",
)]
PREVIEW_FILES = [f"/aasx/files/preview_{i}.png" for i in range(4)]
MARKING_FILES = {"CE": "/aasx/files/ce.png", "UKCA": "/aasx/files/ukca.png", "cULus": "/aasx/files/culus.png",
                 "RoHS": "/aasx/files/rohs.png", "WEEE": "/aasx/files/weee.png"}
THUMBNAIL_FILE = "/aasx/files/thumbnail.png"


def _irdi(prefix: str, index: int) -> str:
    letters = "".join(chr(ord("A") + (index // 26**k) % 26) for k in (2, 1, 0))
    return f"0173-1#{prefix}-TWE{letters}#00{1 + index % 3}"


def _assign_ids(concepts: list[Concept], domain: str | None, start: int) -> list[Concept]:
    out = []
    for i, concept in enumerate(concepts):
        cd_id = (_irdi("02", start + i) if domain is None
                 else f"https://{domain}/cd/{concept.id_short}/1/0")
        out.append(dataclasses.replace(concept, cd_id=cd_id))
    return out


# --------------------------------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------------------------------


def global_ref(value: str) -> aas.Reference:
    return aas.Reference(aas.ReferenceTypes.EXTERNAL_REFERENCE, [aas.Key(aas.KeyTypes.GLOBAL_REFERENCE, value)])


def model_ref(*keys: tuple[aas.KeyTypes, str]) -> aas.Reference:
    return aas.Reference(aas.ReferenceTypes.MODEL_REFERENCE, [aas.Key(t, v) for t, v in keys])


def text(en: str, de: str | None = None) -> list[aas.LangStringTextType]:
    out = [aas.LangStringTextType("en", en)]
    if de:
        out.append(aas.LangStringTextType("de", de))
    return out


class Generator:
    """Builds the environment; all randomness comes from one seeded random.Random."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.concepts: dict[str, Concept] = {}
        core = _assign_ids(CORE_CONCEPTS, None, 0)
        self.concepts.update((c.id_short, c) for c in core)
        self.machine_params: dict[str, list[Concept]] = {}
        for n, (machine_type, params) in enumerate(MACHINE_TYPES.items()):
            domain = VENDORS[n % len(VENDORS)][1]
            assigned = _assign_ids(params, domain, 0)
            self.machine_params[machine_type] = assigned
            self.concepts.update((c.id_short, c) for c in assigned)
        self.value_ids: dict[str, str] = {}  # enumeration value -> value concept id
        self.shell_ids: list[str] = []
        self.t0 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)

    # ---- values --------------------------------------------------------------------------------

    def value(self, c: Concept) -> str:
        rng = self.rng
        if c.choices:
            return rng.choice(c.choices)
        if c.vt in (XSD.DOUBLE, XSD.FLOAT, XSD.DECIMAL):
            return f"{rng.uniform(c.lo, c.hi):.{c.digits}f}"
        if c.vt in (XSD.INT, XSD.LONG, XSD.UNSIGNED_INT):
            return str(rng.randint(int(c.lo), int(c.hi)))
        if c.vt == XSD.BOOLEAN:
            return rng.choice(("true", "false"))
        if c.vt == XSD.DATE_TIME:
            return self.timestamp(rng.randint(0, 90 * 86400), rng.randint(0, 999))
        if c.vt == XSD.DATE:
            return (dt.date(2015, 1, 1) + dt.timedelta(days=rng.randint(0, 3300))).isoformat()
        if c.vt == XSD.ANY_URI:
            return f"https://products.example/{rng.randrange(16**8):08x}"
        return f"{c.id_short[:3].upper()}-{rng.randrange(10**6):06d}"

    def timestamp(self, seconds: int, millis: int = 0) -> str:
        t = self.t0 + dt.timedelta(seconds=seconds)
        return f"{t:%Y-%m-%dT%H:%M:%S}.{millis:03d}Z"

    def sem(self, id_short: str) -> aas.Reference:
        return global_ref(self.concepts[id_short].cd_id)

    def cardinality(self, value: str) -> aas.Qualifier:
        return aas.Qualifier("SMT/Cardinality", XSD.STRING, kind=aas.QualifierKind.CONCEPT_QUALIFIER,
                             value=value, semantic_id=global_ref("https://admin-shell.io/SubmodelTemplates/"
                                                                 "Cardinality/1/0"))

    def limits(self, c: Concept) -> list[aas.Qualifier]:
        span = c.hi - c.lo
        return [
            aas.Qualifier("UpperLimit", XSD.DOUBLE, kind=aas.QualifierKind.VALUE_QUALIFIER,
                          value=f"{c.hi - 0.1 * span:.{c.digits}f}", semantic_id=global_ref(_irdi("02", 900))),
            aas.Qualifier("LowerLimit", XSD.DOUBLE, kind=aas.QualifierKind.VALUE_QUALIFIER,
                          value=f"{c.lo + 0.1 * span:.{c.digits}f}", semantic_id=global_ref(_irdi("02", 901))),
        ]

    # ---- elements -------------------------------------------------------------------------------

    def prop(self, id_short: str | None, concept: str, value: str | None = None, *,
             qualifiers: list[aas.Qualifier] | None = None, source: str | None = None,
             with_value_id: bool = False) -> aas.Property:
        c = self.concepts[concept]
        v = self.value(c) if value is None else value
        extensions = None
        if source is not None:
            extensions = [aas.Extension("TwinEdge.Source", value_type=XSD.STRING, value=source,
                                        semantic_id=global_ref("https://twinedge.example.com/ext/source/1/0"))]
        value_id = None
        if with_value_id and c.choices:
            value_id = global_ref(self.value_ids[f"{concept}.{v}"])
        return aas.Property(c.vt, id_short=id_short, value=v, semantic_id=self.sem(concept),
                            qualifiers=qualifiers or None, extensions=extensions, value_id=value_id,
                            category="PARAMETER" if source is None else "VARIABLE")

    def mlp(self, id_short: str | None, concept: str, en: str, de: str | None = None
            ) -> aas.MultiLanguageProperty:
        return aas.MultiLanguageProperty(id_short=id_short, value=text(en, de), semantic_id=self.sem(concept))

    def rng_el(self, id_short: str, concept: str) -> aas.Range:
        c = self.concepts[concept]
        a, b = sorted(self.rng.uniform(c.lo, c.hi) for _ in range(2))
        return aas.Range(c.vt, id_short=id_short, min=f"{a:.{c.digits}f}", max=f"{b:.{c.digits}f}",
                         semantic_id=self.sem(concept), qualifiers=[self.cardinality("ZeroToOne")])

    def file(self, id_short: str, concept: str, path: str, content_type: str) -> aas.File:
        return aas.File(content_type, id_short=id_short, value=path, semantic_id=self.sem(concept))

    def smc(self, id_short: str | None, concept: str, value: list[aas.SubmodelElement],
            description: tuple[str, str] | None = None) -> aas.SubmodelElementCollection:
        return aas.SubmodelElementCollection(
            id_short=id_short, value=value, semantic_id=self.sem(concept),
            description=text(*description) if description else None)

    def sml(self, id_short: str, concept: str, item_concept: str, kind: aas.AASSubmodelElements,
            value: list[aas.SubmodelElement], value_type: XSD | None = None) -> aas.SubmodelElementList:
        return aas.SubmodelElementList(
            kind, id_short=id_short, value=value, semantic_id=self.sem(concept),
            semantic_id_list_element=self.sem(item_concept), value_type_list_element=value_type,
            order_relevant=True)

    # ---- submodels -----------------------------------------------------------------------------

    def nameplate(self, sm_id: str, vendor: tuple[str, ...], product: str, serial: str, year: int
                  ) -> aas.Submodel:
        name, domain, city, street, zipcode, country, phone = vendor
        markings: list[aas.SubmodelElement] = []
        for marking in self.rng.sample(sorted(MARKING_FILES), self.rng.randint(1, 4)):
            markings.append(self.smc(None, "Marking", [
                self.prop("MarkingName", "MarkingName", marking),
                self.file("MarkingFile", "MarkingFile", MARKING_FILES[marking], "image/png"),
            ]))
        elements: list[aas.SubmodelElement] = [
            self.prop("URIOfTheProduct", "URIOfTheProduct", f"https://{domain}/products/{product}",
                      qualifiers=[self.cardinality("One")]),
            self.mlp("ManufacturerName", "ManufacturerName", name, name),
            self.mlp("ManufacturerProductDesignation", "ManufacturerProductDesignation",
                     f"{product} machining centre", f"{product} Bearbeitungszentrum"),
            self.smc("ContactInformation", "ContactInformation", [
                self.prop("RoleOfContactPerson", "RoleOfContactPerson"),
                self.mlp("NationalCode", "NationalCode", country),
                self.mlp("CityTown", "CityTown", city),
                self.mlp("Street", "Street", street),
                self.mlp("Zipcode", "Zipcode", zipcode),
                self.smc("Phone", "Phone", [
                    self.mlp("TelephoneNumber", "TelephoneNumber", phone),
                    self.prop("TypeOfTelephone", "TypeOfTelephone", "Office"),
                ]),
                self.smc("Email", "Email", [
                    self.prop("EmailAddress", "EmailAddress", f"service@{domain}"),
                ]),
            ]),
            self.mlp("ManufacturerProductFamily", "ManufacturerProductFamily", product.split("-")[0]),
            self.prop("SerialNumber", "SerialNumber", serial, qualifiers=[self.cardinality("One")]),
            self.prop("YearOfConstruction", "YearOfConstruction", str(year)),
            self.prop("DateOfManufacture", "DateOfManufacture",
                      f"{year}-{self.rng.randint(1, 12):02d}-{self.rng.randint(1, 28):02d}"),
            self.prop("HardwareVersion", "HardwareVersion", f"{self.rng.randint(1, 5)}.{self.rng.randint(0, 9)}"),
            self.prop("FirmwareVersion", "FirmwareVersion",
                      f"{self.rng.randint(1, 9)}.{self.rng.randint(0, 20)}.{self.rng.randint(0, 300)}"),
            self.prop("CountryOfOrigin", "CountryOfOrigin", country),
            self.sml("Markings", "Markings", "Marking", aas.AASSubmodelElements.SUBMODEL_ELEMENT_COLLECTION,
                     markings),
        ]
        return aas.Submodel(sm_id, id_short="Nameplate", kind=aas.ModellingKind.INSTANCE,
                            semantic_id=global_ref(SUBMODEL_SEMANTICS["Nameplate"]),
                            administration=aas.AdministrativeInformation(version="2", revision="0"),
                            description=text("Digital nameplate", "Digitales Typenschild"),
                            submodel_elements=elements)

    def technical_data(self, sm_id: str, vendor: tuple[str, ...], machine_type: str, product: str
                       ) -> aas.Submodel:
        rng = self.rng
        params: list[aas.SubmodelElement] = []
        for c in self.machine_params[machine_type]:
            quals = [self.cardinality("ZeroToOne")]
            params.append(self.prop(c.id_short, c.id_short, qualifiers=quals))
        classifications: list[aas.SubmodelElement] = [
            self.smc(None, "ProductClassificationItem", [
                self.prop("ProductClassificationSystem", "ProductClassificationSystem", system),
                self.prop("ClassificationSystemVersion", "ClassificationSystemVersion"),
                self.prop("ProductClassId", "ProductClassId",
                          f"{rng.randint(20, 36)}-{rng.randint(1, 99):02d}-{rng.randint(1, 99):02d}-"
                          f"{rng.randint(1, 99):02d}"),
            ]) for system in ("ECLASS", "ETIM")[: rng.randint(1, 2)]
        ]
        elements: list[aas.SubmodelElement] = [
            self.smc("GeneralInformation", "GeneralInformation", [
                self.prop("ManufacturerName", "ManufacturerName", vendor[0]),
                self.mlp("ManufacturerProductDesignation", "ManufacturerProductDesignation", product),
                self.prop("ManufacturerArticleNumber", "ManufacturerArticleNumber"),
                self.prop("ManufacturerOrderCode", "ManufacturerOrderCode"),
                self.file("ProductImage", "ProductImage", f"https://{vendor[1]}/media/{product}.jpg",
                          "image/jpeg"),
            ]),
            self.sml("ProductClassifications", "ProductClassifications", "ProductClassificationItem",
                     aas.AASSubmodelElements.SUBMODEL_ELEMENT_COLLECTION, classifications),
            self.smc("TechnicalProperties", "TechnicalProperties", [
                *params,
                self.smc("Electrical", "Electrical", [
                    self.prop("RatedVoltage", "RatedVoltage", rng.choice(("230.0", "400.0", "480.0"))),
                    self.prop("RatedCurrent", "RatedCurrent"),
                    self.prop("RatedPower", "RatedPower"),
                    self.rng_el("SupplyVoltageRange", "SupplyVoltageRange"),
                    self.prop("ProtectionClass", "ProtectionClass", with_value_id=True),
                ], ("Electrical connection", "Elektrischer Anschluss")),
                self.smc("Mechanical", "Mechanical", [
                    self.prop("Weight", "Weight"),
                    self.prop("Width", "Width"),
                    self.prop("Height", "Height"),
                    self.prop("Depth", "Depth"),
                ]),
                self.smc("Environmental", "Environmental", [
                    self.rng_el("OperatingTemperature", "OperatingTemperature"),
                    self.rng_el("StorageTemperature", "StorageTemperature"),
                    self.prop("RelativeHumidityMax", "RelativeHumidityMax"),
                ]),
            ]),
            self.smc("FurtherInformation", "FurtherInformation", [
                self.mlp("TextStatement", "TextStatement",
                         "Values are nominal values at 20 °C ambient temperature.",
                         "Angaben sind Nennwerte bei 20 °C Umgebungstemperatur."),
                self.prop("ValidDate", "ValidDate"),
            ]),
        ]
        return aas.Submodel(sm_id, id_short="TechnicalData", kind=aas.ModellingKind.INSTANCE,
                            semantic_id=global_ref(SUBMODEL_SEMANTICS["TechnicalData"]),
                            administration=aas.AdministrativeInformation(version="1", revision="2"),
                            submodel_elements=elements)

    def operational_data(self, sm_id: str, tech_id: str, machine_type: str, tag: str) -> aas.Submodel:
        rng = self.rng
        node = f"ns=2;s={tag}"
        temperature = self.concepts["Temperature"]
        start = rng.randint(0, 60 * 86400)
        trend: list[aas.SubmodelElement] = []
        level = rng.uniform(30, 60)
        for _ in range(rng.randint(12, 36)):
            level = min(max(level + rng.gauss(0, 0.4), temperature.lo), temperature.hi)
            trend.append(aas.Property(XSD.DOUBLE, value=f"{level:.2f}", semantic_id=self.sem("Temperature")))
        samples: list[aas.SubmodelElement] = []
        for i in range(rng.randint(4, 10)):
            samples.append(self.smc(None, "Measurement", [
                self.prop("Timestamp", "Timestamp", self.timestamp(start + 10 * i, rng.randint(0, 999))),
                self.prop("Temperature", "Temperature"),
                self.prop("Speed", "Speed"),
                self.prop("PowerConsumption", "PowerConsumption"),
                self.prop("Vibration", "Vibration"),
            ]))
        alarms: list[aas.SubmodelElement] = []
        for _ in range(rng.randint(0, 6)):
            code = f"{rng.choice(('E', 'W', 'I'))}{rng.randint(1000, 9999)}"
            alarms.append(self.smc(None, "Alarm", [
                self.prop("AlarmCode", "AlarmCode", code),
                self.prop("Severity", "Severity"),
                self.mlp("AlarmText", "AlarmText", f"Alarm {code}: check axis drive",
                         f"Alarm {code}: Achsantrieb prüfen"),
                self.prop("Timestamp", "Timestamp"),
                self.prop("Acknowledged", "Acknowledged"),
            ]))
        first_param = self.machine_params[machine_type][0].id_short
        elements: list[aas.SubmodelElement] = [
            self.smc("CurrentState", "CurrentState", [
                self.prop("MachineState", "MachineState", source=f"{node}.State", with_value_id=True),
                self.prop("Running", "Running", source=f"{node}.Running"),
                self.prop("PartCount", "PartCount", source=f"{node}.PartCount"),
                self.prop("OperatingHours", "OperatingHours", source=f"{node}.OperatingHours"),
                self.prop("LastUpdate", "LastUpdate", self.timestamp(start, rng.randint(0, 999))),
                self.prop("Temperature", "Temperature", source=f"{node}.Temperature",
                          qualifiers=self.limits(temperature)),
                self.prop("Pressure", "Pressure", source=f"{node}.Pressure",
                          qualifiers=self.limits(self.concepts["Pressure"])),
                self.prop("Vibration", "Vibration", source=f"{node}.Vibration",
                          qualifiers=self.limits(self.concepts["Vibration"])),
                self.prop("PowerConsumption", "PowerConsumption", source=f"{node}.Power"),
            ]),
            aas.ReferenceElement(
                id_short="ActiveProgram", semantic_id=self.sem("ActiveProgram"),
                value=model_ref((aas.KeyTypes.SUBMODEL, tech_id),
                                (aas.KeyTypes.SUBMODEL_ELEMENT_COLLECTION, "TechnicalProperties"),
                                (aas.KeyTypes.PROPERTY, first_param))),
            self.sml("TemperatureTrend", "TemperatureTrend", "Temperature", aas.AASSubmodelElements.PROPERTY,
                     trend, XSD.DOUBLE),
            self.sml("Measurements", "Measurements", "Measurement",
                     aas.AASSubmodelElements.SUBMODEL_ELEMENT_COLLECTION, samples),
        ]
        if alarms:
            elements.append(self.sml("Alarms", "Alarms", "Alarm",
                                     aas.AASSubmodelElements.SUBMODEL_ELEMENT_COLLECTION, alarms))
        return aas.Submodel(sm_id, id_short="OperationalData", kind=aas.ModellingKind.INSTANCE,
                            semantic_id=global_ref(SUBMODEL_SEMANTICS["OperationalData"]),
                            description=text("Live values mirrored by the TwinEdge edge agent",
                                             "Vom TwinEdge-Edge-Agenten gespiegelte Live-Werte"),
                            submodel_elements=elements)

    def documentation(self, sm_id: str, vendor: tuple[str, ...], product: str) -> aas.Submodel:
        rng = self.rng
        documents: list[aas.SubmodelElement] = []
        for n, path in enumerate(rng.sample(DOCUMENT_FILES, rng.randint(3, 7)), start=1):
            title = Path(path).stem.replace("_", " ")
            versions: list[aas.SubmodelElement] = [
                self.prop("Language", "Language", "de" if path.endswith("_de.pdf") else "en"),
                self.prop("Version", "Version", f"{rng.randint(1, 4)}.{rng.randint(0, 9)}"),
                self.mlp("Title", "Title", f"{product} {title}", f"{product} {title}"),
                self.mlp("Summary", "Summary", f"{title.capitalize()} for the {product}."),
                self.prop("StatusSetDate", "StatusSetDate"),
                self.prop("StatusValue", "StatusValue"),
                self.prop("OrganizationName", "OrganizationName", vendor[0]),
                self.file("DigitalFile", "DigitalFile", path, "application/pdf"),
                self.file("PreviewFile", "PreviewFile", rng.choice(PREVIEW_FILES), "image/png"),
            ]
            documents.append(self.smc(f"Document{n:02d}", "Document", [
                self.prop("DocumentId", "DocumentId", f"{vendor[1].split('.')[0].upper()}-DOC-"
                                                      f"{rng.randrange(10**7):07d}"),
                self.prop("DocumentClassId", "DocumentClassId"),
                self.smc("DocumentVersion01", "DocumentVersion", versions),
            ], (title.capitalize(), title.capitalize())))
        return aas.Submodel(sm_id, id_short="HandoverDocumentation", kind=aas.ModellingKind.INSTANCE,
                            semantic_id=global_ref(SUBMODEL_SEMANTICS["HandoverDocumentation"]),
                            submodel_elements=documents)

    def bill_of_material(self, sm_id: str, asset_id: str, domain: str) -> aas.Submodel:
        rng = self.rng
        nodes: list[aas.SubmodelElement] = []
        relationships: list[aas.SubmodelElement] = []
        for n in range(1, rng.randint(3, 8) + 1):
            component = f"https://{domain}/assets/component/{rng.randrange(16**10):010x}"
            statements: list[aas.SubmodelElement] = [self.prop("BulkCount", "BulkCount")]
            if self.shell_ids and rng.random() < 0.5:
                statements.append(aas.ReferenceElement(
                    id_short="SameAs", semantic_id=self.sem("SameAs"),
                    value=model_ref((aas.KeyTypes.ASSET_ADMINISTRATION_SHELL, rng.choice(self.shell_ids)))))
            nodes.append(aas.Entity(aas.EntityType.SELF_MANAGED_ENTITY, id_short=f"Node{n:02d}",
                                    semantic_id=self.sem("Node"), global_asset_id=component,
                                    statements=statements))
            relationships.append(aas.RelationshipElement(
                first=model_ref((aas.KeyTypes.SUBMODEL, sm_id), (aas.KeyTypes.ENTITY, "EntryNode")),
                second=model_ref((aas.KeyTypes.SUBMODEL, sm_id), (aas.KeyTypes.ENTITY, "EntryNode"),
                                 (aas.KeyTypes.ENTITY, f"Node{n:02d}")),
                id_short=f"HasPart{n:02d}", semantic_id=self.sem("HasPart")))
        entry = aas.Entity(aas.EntityType.SELF_MANAGED_ENTITY, id_short="EntryNode",
                           semantic_id=self.sem("EntryNode"), global_asset_id=asset_id,
                           statements=[*nodes, *relationships])
        return aas.Submodel(sm_id, id_short="BillOfMaterial", kind=aas.ModellingKind.INSTANCE,
                            semantic_id=global_ref(SUBMODEL_SEMANTICS["BillOfMaterial"]),
                            submodel_elements=[entry, self.prop("ArcheType", "ArcheType", "OneDown")])

    def machine(self, index: int) -> tuple[aas.AssetAdministrationShell, list[aas.Submodel]]:
        rng = self.rng
        machine_type = rng.choice(sorted(MACHINE_TYPES))
        vendor = VENDORS[rng.randrange(len(VENDORS))]
        domain = vendor[1]
        product = f"{machine_type[:3].upper()}-{rng.choice((200, 300, 500, 800))}{rng.choice(('', 'S', 'X'))}"
        serial = f"{rng.randint(10, 99)}{rng.randrange(10**6):06d}"
        year = rng.randint(2012, 2024)
        line, cell = 1 + index // 40, 1 + (index // 8) % 5
        tag = f"L{line}C{cell}.{machine_type}{index:04d}"
        base = f"https://twinedge.example.com/plant1/line{line}/{machine_type.lower()}{index:04d}"
        asset_id = f"https://{domain}/assets/{serial}"
        sm_ids = {name: f"{base}/sm/{name.lower()}" for name in SUBMODEL_SEMANTICS}
        submodels = [
            self.nameplate(sm_ids["Nameplate"], vendor, product, serial, year),
            self.technical_data(sm_ids["TechnicalData"], vendor, machine_type, product),
            self.operational_data(sm_ids["OperationalData"], sm_ids["TechnicalData"], machine_type, tag),
            self.documentation(sm_ids["HandoverDocumentation"], vendor, product),
            self.bill_of_material(sm_ids["BillOfMaterial"], asset_id, domain),
        ]
        shell = aas.AssetAdministrationShell(
            f"{base}/aas", id_short=f"{machine_type}_{index:04d}",
            description=text(f"{machine_type} {product} in line {line}, cell {cell}",
                             f"{machine_type} {product} in Linie {line}, Zelle {cell}"),
            administration=aas.AdministrativeInformation(version="1", revision=str(rng.randint(0, 9))),
            asset_information=aas.AssetInformation(
                aas.AssetKind.INSTANCE, global_asset_id=asset_id,
                specific_asset_ids=[
                    aas.SpecificAssetID("SerialNumber", serial, external_subject_id=global_ref(f"https://{domain}")),
                    aas.SpecificAssetID("InventoryNumber", f"INV-{100000 + index}",
                                        external_subject_id=global_ref("https://twinedge.example.com")),
                ],
                asset_type=f"https://{domain}/types/{product}",
                default_thumbnail=aas.Resource(THUMBNAIL_FILE, "image/png")),
            submodels=[model_ref((aas.KeyTypes.SUBMODEL, sm.id)) for sm in submodels])
        self.shell_ids.append(shell.id)
        return shell, submodels

    # ---- concept descriptions -------------------------------------------------------------------

    def concept_descriptions(self) -> list[aas.ConceptDescription]:
        cds: list[aas.ConceptDescription] = []
        units: dict[str, str] = {}
        for c in self.concepts.values():
            value_list = None
            if c.choices and c.category == "PROPERTY":
                pairs = []
                for choice in c.choices:
                    value_cd = f"{c.cd_id.rsplit('/1/0', 1)[0]}/values/{re.sub(r'[^A-Za-z0-9]', '', choice)}" \
                        if c.cd_id.startswith("https://") else _irdi("07", 100 + len(self.value_ids))
                    self.value_ids[f"{c.id_short}.{choice}"] = value_cd
                    pairs.append(aas.ValueReferencePair(choice, global_ref(value_cd)))
                    cds.append(self._cd(value_cd, f"{c.id_short}_{re.sub(r'[^A-Za-z0-9]', '', choice)}",
                                        "VALUE", aas.DataSpecificationIEC61360(
                                            [aas.LangStringPreferredNameTypeIEC61360("en", choice)],
                                            data_type=IEC.STRING, value=choice)))
                value_list = aas.ValueList(pairs)
            unit_id = None
            if c.unit:
                unit_id = global_ref(units.setdefault(c.unit, _irdi("05", 500 + len(units))))
            content = aas.DataSpecificationIEC61360(
                [aas.LangStringPreferredNameTypeIEC61360("en", c.en),
                 aas.LangStringPreferredNameTypeIEC61360("de", c.de)],
                short_name=[aas.LangStringShortNameTypeIEC61360("en", c.id_short[:18])],
                unit=c.unit, unit_id=unit_id, data_type=c.iec,
                definition=[aas.LangStringDefinitionTypeIEC61360("en", f"{c.en.capitalize()} of the asset, "
                                                                       "as specified by the manufacturer."),
                            aas.LangStringDefinitionTypeIEC61360("de", f"{c.de}, laut Herstellerangabe.")],
                source_of_definition="TwinEdge concept dictionary",
                symbol=c.id_short[:1] if c.unit else None,
                value_format=f"NR2..{c.digits + 4}.{c.digits}" if c.vt in (XSD.DOUBLE, XSD.DECIMAL) else None,
                value_list=value_list,
                level_type=aas.LevelType(min=True, nom=False, typ=False, max=True)
                if c.id_short.endswith("Range") or c.id_short.endswith("Temperature") else None)
            cds.append(self._cd(c.cd_id, c.id_short, c.category, content))
        return cds

    @staticmethod
    def _cd(cd_id: str, id_short: str, category: str | None, content: aas.DataSpecificationIEC61360
            ) -> aas.ConceptDescription:
        return aas.ConceptDescription(
            cd_id, id_short=id_short, category=category,
            administration=aas.AdministrativeInformation(version="1", revision="0"),
            embedded_data_specifications=[aas.EmbeddedDataSpecification(global_ref(IEC61360_TEMPLATE), content)])


def _pretty_size(obj: aas.Class) -> int:
    """Bytes this object takes in the environment's pretty JSON (nested two levels deep there)."""
    text_ = orjson.dumps(jsonization.to_jsonable(obj), option=orjson.OPT_INDENT_2)
    return len(text_) + 4 * (text_.count(b"\n") + 1) + 2


def generate(size_mb: float, seed: int) -> aas.Environment:
    gen = Generator(seed)
    cds = gen.concept_descriptions()
    total = sum(_pretty_size(cd) for cd in cds) + 64
    target = size_mb * MB
    shells: list[aas.AssetAdministrationShell] = []
    submodels: list[aas.Submodel] = []
    last_report = 0.0
    while total < target or not shells:
        shell, sms = gen.machine(len(shells))
        shells.append(shell)
        submodels.extend(sms)
        total += _pretty_size(shell) + sum(_pretty_size(sm) for sm in sms)
        if total - last_report > target / 5:
            progress(f"  generated {len(shells)} shells, ~{total / MB:.1f} MB")
            last_report = total
    return aas.Environment(asset_administration_shells=shells, submodels=submodels, concept_descriptions=cds)


# --------------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Timing:
    runs: list[float]

    @property
    def best(self) -> float:
        return min(self.runs)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    def as_dict(self) -> dict[str, Any]:
        return {"best_ms": round(self.best * 1e3, 2), "median_ms": round(self.median * 1e3, 2),
                "runs_ms": [round(r * 1e3, 2) for r in self.runs]}


@dataclasses.dataclass
class Row:
    key: str
    operation: str
    project: Timing | None
    basyx: Timing | None
    project_bytes: int
    basyx_bytes: int
    note: str = ""

    def speedup(self, median: bool = False) -> float | None:
        if self.project is None or self.basyx is None:
            return None
        if median:
            return self.basyx.median / self.project.median
        return self.basyx.best / self.project.best


def measure(label: str, fn: Callable[[], object], repeat: int) -> Timing:
    runs: list[float] = []
    for i in range(repeat):
        gc.collect()
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
        del result  # freeing the result is not part of the operation
        runs.append(elapsed)
        progress(f"  {label} run {i + 1}/{repeat}: {elapsed * 1e3:.1f} ms")
    return Timing(runs)


def try_call(fn: Callable[[], T]) -> tuple[T | None, str | None]:
    try:
        return fn(), None
    except Exception as exc:  # interoperability probes report any failure as a finding
        message = f"{type(exc).__name__}: {exc}"
        return None, message if len(message) < 400 else message[:400] + "…"


def diff_jsonables(a: Any, b: Any, path: str = "$") -> Iterator[str]:
    """Yield 'path: what differs' with list indices folded to [*]."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(a.keys() | b.keys()):
            if key not in b:
                yield f"{path}.{key}: only in the project's JSON"
            elif key not in a:
                yield f"{path}.{key}: only in basyx's JSON"
            else:
                yield from diff_jsonables(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            yield f"{path}: list length {len(a)} vs {len(b)}"
        elif a != b and sorted(map(_canonical, a)) == sorted(map(_canonical, b)):
            yield f"{path}: same items, different order"
            return
        for x, y in zip(a, b, strict=False):
            yield from diff_jsonables(x, y, f"{path}[*]")
    elif a != b:
        yield f"{path}: {a!r} vs {b!r}" if not isinstance(a, dict | list) else f"{path}: type differs"


def _canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def summarise_diff(a: Any, b: Any, limit: int = 12) -> list[str]:
    counts: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for item in diff_jsonables(a, b):
        where = item.split(": ", 1)[0]
        counts[where] += 1
        examples.setdefault(where, item)
    return [f"{examples[w]}  (×{n})" for w, n in counts.most_common(limit)]


# --------------------------------------------------------------------------------------------------
# Benchmark
# --------------------------------------------------------------------------------------------------


def _supplementary_parts(rng: random.Random) -> list[PackagePart]:
    parts = []
    for name in [*DOCUMENT_FILES, *PREVIEW_FILES, *MARKING_FILES.values()]:
        content_type = "application/pdf" if name.endswith(".pdf") else "image/png"
        size = 24_000 if name.endswith(".pdf") else 3_000
        parts.append(PackagePart(name, content_type, rng.randbytes(size)))
    return parts


def _basyx_store_json(store: BasyxStore, indent: int | None = None) -> bytes:
    return basyx_json.object_store_to_json(store, indent=indent).encode("utf-8")


def _basyx_xml(store: BasyxStore) -> bytes:
    out = io.BytesIO()
    basyx_xml.write_aas_xml_file(out, store)
    return out.getvalue()


def _basyx_write_aasx(store: BasyxStore, files: basyx_aasx.DictSupplementaryFileContainer
                      ) -> bytes:
    out = io.BytesIO()
    with basyx_aasx.AASXWriter(out, failsafe=False) as writer:
        writer.write_all_aas_objects("/aasx/data.json", store, files, write_json=True)
    return out.getvalue()


def _basyx_read_aasx(data: bytes) -> tuple[BasyxStore,
                                            basyx_aasx.DictSupplementaryFileContainer]:
    store: BasyxStore = basyx_model.DictIdentifiableStore()
    files = basyx_aasx.DictSupplementaryFileContainer()  # type: ignore[no-untyped-call]
    with basyx_aasx.AASXReader(io.BytesIO(data), failsafe=False) as reader:
        reader.read_into(store, files)
    return store, files


def count_objects(env: aas.Environment) -> dict[str, int]:
    objects = 1
    elements = 0
    for obj in env.descend():
        objects += 1
        elements += isinstance(obj, aas.SubmodelElement)
    return {
        "shells": len(env.asset_administration_shells or []),
        "submodels": len(env.submodels or []),
        "concept_descriptions": len(env.concept_descriptions or []),
        "submodel_elements": elements,
        "model_objects": objects,
    }


class Bench:
    """Runs the timed stages. Each stage keeps only its own inputs alive: a large live heap (a parsed
    environment or basyx object store) makes every full GC pass slower and would skew the figures."""

    def __init__(self, args: argparse.Namespace, data: bytes, name: str) -> None:
        self.args = args
        self.data = data
        self.name = name
        self.rows: list[Row] = []
        self.interop: dict[str, Any] = {}

    def time(self, label: str, fn: Callable[[], object]) -> Timing:
        progress(f"{label} …")
        return measure(label, fn, self.args.repeat)

    def add(self, key: str, operation: str, project: Timing | None, basyx: Timing | None,
            project_bytes: int, basyx_bytes: int, note: str = "") -> None:
        self.rows.append(Row(key, operation, project, basyx, project_bytes, basyx_bytes, note))

    def json(self) -> None:
        data, name = self.data, self.name
        size = len(data)
        b_parse = self.time("basyx JSON parse (read_aas_json_file, failsafe=False)",
                            lambda: basyx_json.read_aas_json_file(io.BytesIO(data), failsafe=False))
        p_fast = self.time("project JSON parse (strict=False)", lambda: parse_json(data, name, strict=False))
        p_strict = self.time("project JSON parse (strict=True)", lambda: parse_json(data, name, strict=True))
        p_verify = self.time("project JSON parse (strict) + verify",
                             lambda: list(verification.verify(parse_json(data, name, strict=True))))
        self.add("json-parse-fast", "JSON parse, strict=False", p_fast, b_parse, size, size)
        self.add("json-parse-strict", "JSON parse, strict=True", p_strict, b_parse, size, size)
        self.add("json-parse-verify", "JSON parse strict + verify", p_verify, b_parse, size, size)

        compact, verify_only, p_wc, p_wp = self._project_json_writes(parse_json(data, name))
        store = basyx_json.read_aas_json_file(io.BytesIO(data), failsafe=False)
        self.interop["basyx_reads_project_json"] = {"ok": True, "objects": len(store)}
        basyx_compact, basyx_pretty, b_wc, b_wp, b_file = self._basyx_json_writes(store)
        del store

        self.add("json-verify", "verify only (aas-core3)", verify_only, None, size, 0)
        self.add("json-write-compact", "JSON write compact", p_wc, b_wc, len(compact), len(basyx_compact))
        self.add("json-write-pretty", "JSON write pretty", p_wp, b_wp, size, len(basyx_pretty))
        if b_file is not None:
            self.add("json-write-file", "basyx write_aas_json_file", None, b_file, 0, len(basyx_compact),
                     "json.dump streams through the pure-Python encoder")

        # Does aas-core read what basyx writes, and is it the same content?
        back, error = try_call(lambda: parse_json(basyx_pretty, "basyx.json", strict=True))
        entry: dict[str, Any] = {"ok": back is not None, "error": error}
        if back is not None:
            causes = Counter(re.sub(r"\[\d+\]", "[*]", f"{e.path}: {e.cause}")
                             for e in verification.verify(back))
            entry["verify_errors"] = sum(causes.values())
            entry["verify_error_kinds"] = [f"{c}  (×{n})" for c, n in causes.most_common(8)]
            entry["differences"] = summarise_diff(orjson.loads(compact), orjson.loads(basyx_compact))
        self.interop["project_reads_basyx_json"] = entry

    def _project_json_writes(self, env: aas.Environment) -> tuple[bytes, Timing, Timing, Timing]:
        verify_only = self.time("project verify only", lambda: list(verification.verify(env)))
        p_wc = self.time("project JSON write compact", lambda: dump_json(env, pretty=False))
        p_wp = self.time("project JSON write pretty", lambda: dump_json(env))
        return dump_json(env, pretty=False), verify_only, p_wc, p_wp

    def _basyx_json_writes(self, store: BasyxStore) -> tuple[bytes, bytes, Timing, Timing, Timing | None]:
        b_wc = self.time("basyx JSON write compact (object_store_to_json)", lambda: _basyx_store_json(store))
        b_wp = self.time("basyx JSON write indent=2 (object_store_to_json)",
                         lambda: _basyx_store_json(store, 2))
        b_file = None
        if self.args.file_api:
            b_file = self.time("basyx write_aas_json_file(BytesIO)", lambda: _basyx_write_file(store))
        return _basyx_store_json(store), _basyx_store_json(store, 2), b_wc, b_wp, b_file

    def xml(self) -> None:
        xml, p_xw = self._project_xml_write(parse_json(self.data, self.name))
        xml_31 = xml.replace(NS_AAS_30, NS_AAS_31)
        store, error = try_call(lambda: basyx_xml.read_aas_xml_file(io.BytesIO(xml), failsafe=False))
        self.interop["basyx_reads_project_xml_3_0_namespace"] = {
            "ok": bool(store), "objects": len(store) if store is not None else 0, "error": error}
        store = basyx_xml.read_aas_xml_file(io.BytesIO(xml_31), failsafe=False)
        self.interop["basyx_reads_project_xml_renamed_to_3_1"] = {"ok": True, "objects": len(store)}
        basyx_out, b_xw = self._basyx_xml_write(store)
        del store

        back, error = try_call(lambda: parse_xml(basyx_out, "basyx.xml"))
        self.interop["project_reads_basyx_xml"] = {"ok": back is not None, "error": error}
        back, error = try_call(lambda: parse_xml(basyx_out.replace(NS_AAS_31, NS_AAS_30), "basyx.xml"))
        self.interop["project_reads_basyx_xml_renamed_to_3_0"] = {"ok": back is not None, "error": error}
        del back

        p_xr = self.time("project XML parse", lambda: parse_xml(xml, "environment.xml"))
        b_xr = self.time("basyx XML parse (read_aas_xml_file, failsafe=False)",
                         lambda: basyx_xml.read_aas_xml_file(io.BytesIO(xml_31), failsafe=False))
        self.add("xml-parse", "XML parse", p_xr, b_xr, len(xml), len(xml_31))
        self.add("xml-write", "XML write", p_xw, b_xw, len(xml), len(basyx_out))

    def _project_xml_write(self, env: aas.Environment) -> tuple[bytes, Timing]:
        return dump_xml(env), self.time("project XML write", lambda: dump_xml(env))

    def _basyx_xml_write(self, store: BasyxStore) -> tuple[bytes, Timing]:
        return _basyx_xml(store), self.time("basyx XML write (write_aas_xml_file)", lambda: _basyx_xml(store))

    def aasx(self) -> None:
        seed = self.args.seed
        parts = _supplementary_parts(random.Random(seed + 1))
        thumbnail = PackagePart(THUMBNAIL_FILE, "image/png", random.Random(seed + 2).randbytes(8_000))
        files = basyx_aasx.DictSupplementaryFileContainer()  # type: ignore[no-untyped-call]
        for part in [*parts, thumbnail]:
            files.add_file(part.name, io.BytesIO(part.data), part.content_type)

        project_aasx, p_aw = self._project_aasx_write(
            AasPackage(parse_json(self.data, self.name), parts, thumbnail))
        written, b_aw = self._basyx_aasx_write(
            basyx_json.read_aas_json_file(io.BytesIO(self.data), failsafe=False), files)

        p_ar = self.time("project AASX read", lambda: read_aasx(project_aasx, "bench.aasx"))
        b_ar = None
        if written is not None:
            basyx_aasx_bytes = written
            b_ar = self.time("basyx AASX read (AASXReader)", lambda: _basyx_read_aasx(basyx_aasx_bytes))
            got, err = try_call(lambda: read_aasx(basyx_aasx_bytes, "basyx.aasx"))
            self.interop["project_reads_basyx_aasx"] = {"ok": got is not None, "error": err}
            del got
        got_b, err = try_call(lambda: _basyx_read_aasx(project_aasx))
        self.interop["basyx_reads_project_aasx"] = {
            "ok": got_b is not None, "error": err,
            "objects": len(got_b[0]) if got_b else 0, "files": len(list(got_b[1])) if got_b else 0}
        size_b = len(written or b"")
        self.add("aasx-read", "AASX read (JSON part)", p_ar, b_ar, len(project_aasx), size_b)
        self.add("aasx-write", "AASX write (JSON part)", p_aw, b_aw, len(project_aasx), size_b)

    def _project_aasx_write(self, package: AasPackage) -> tuple[bytes, Timing]:
        return write_aasx(package), self.time("project AASX write", lambda: write_aasx(package))

    def _basyx_aasx_write(self, store: BasyxStore, files: basyx_aasx.DictSupplementaryFileContainer
                          ) -> tuple[bytes | None, Timing | None]:
        written, error = try_call(lambda: _basyx_write_aasx(store, files))
        if written is None:
            self.interop["basyx_writes_aasx"] = {"ok": False, "error": error}
            return None, None
        return written, self.time("basyx AASX write (AASXWriter, JSON part)",
                                  lambda: _basyx_write_aasx(store, files))


def run(args: argparse.Namespace) -> dict[str, Any]:
    formats = {f.strip() for f in args.formats.split(",") if f.strip()}
    unknown = formats - {"json", "xml", "aasx"}
    if unknown:
        raise SystemExit(f"unknown --formats entries: {', '.join(sorted(unknown))}")
    started = time.perf_counter()

    progress(f"generating ~{args.size_mb} MB AAS 3.0 environment (seed {args.seed}) …")
    generated = generate(args.size_mb, args.seed)
    errors = list(verification.verify(generated))
    if errors:
        for error in errors[:10]:
            progress(f"  generator bug: {error.path}: {error.cause}")
        raise SystemExit(f"the generated environment breaks {len(errors)} constraints; fix the generator")
    data = dump_json(generated)
    counts = count_objects(generated)
    compact_size = len(dump_json(generated, pretty=False))
    del generated

    tmp: tempfile.TemporaryDirectory[str] | None = None
    if args.out:
        json_path = Path(args.out)
        json_path.parent.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="aas_serde_")
        json_path = Path(tmp.name) / "environment.json"
    json_path.write_bytes(data)
    data = json_path.read_bytes()
    if tmp is not None:
        tmp.cleanup()
    progress(f"wrote {len(data) / MB:.2f} MB to {json_path}; {counts}")

    if args.profile:
        profile_op(args.profile, data, json_path.name)
        return {}

    bench = Bench(args, data, json_path.name)
    gc.collect()
    if "json" in formats:
        bench.json()
    if "xml" in formats:
        bench.xml()
    if "aasx" in formats:
        bench.aasx()

    versions = {dist: importlib.metadata.version(dist)
                for dist in ("aas-core3.0", "basyx-python-sdk", "orjson", "lxml")}
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "seed": args.seed,
        "repeat": args.repeat,
        "gc": "disabled" if args.no_gc else "enabled",
        "input": {"file": str(json_path) if args.out else None, "json_pretty_bytes": len(data),
                  "json_compact_bytes": compact_size, **counts},
        "results": [
            {"key": r.key, "operation": r.operation,
             "project": r.project.as_dict() if r.project else None,
             "basyx": r.basyx.as_dict() if r.basyx else None,
             "speedup_best": _round(r.speedup()), "speedup_median": _round(r.speedup(median=True)),
             "project_mb_s": _mbs(r.project_bytes, r.project), "basyx_mb_s": _mbs(r.basyx_bytes, r.basyx),
             "note": r.note or None}
            for r in bench.rows
        ],
        "interop": bench.interop,
        "wall_s": round(time.perf_counter() - started, 1),
    }


def _basyx_write_file(store: BasyxStore) -> bytes:
    out = io.BytesIO()
    basyx_json.write_aas_json_file(out, store)
    return out.getvalue()


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _mbs(size: int, timing: Timing | None) -> float | None:
    return None if timing is None or not size else round(size / MB / timing.best, 1)


# --------------------------------------------------------------------------------------------------
# Profiling and output
# --------------------------------------------------------------------------------------------------

PROFILE_OPS = ("json-parse-fast", "json-parse-strict", "json-verify", "json-write-compact", "json-write-pretty")


def profile_op(key: str, data: bytes, name: str) -> None:
    env = parse_json(data, name)
    ops: dict[str, Callable[[], object]] = {
        "json-parse-fast": lambda: parse_json(data, name, strict=False),
        "json-parse-strict": lambda: parse_json(data, name, strict=True),
        "json-verify": lambda: list(verification.verify(env)),
        "json-write-compact": lambda: dump_json(env, pretty=False),
        "json-write-pretty": lambda: dump_json(env),
    }
    if key.startswith("json-parse"):
        del env  # profile the parse with the same heap as the timed runs
    progress(f"profiling {key} with cProfile …")
    profiler = cProfile.Profile()
    gc.collect()
    profiler.runcall(ops[key])
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(20)
    stats.sort_stats("cumulative").print_stats(15)


def print_table(result: dict[str, Any]) -> None:
    inp = result["input"]
    v = result["versions"]
    print(f"AAS serialisation benchmark: TwinEdge aas_models (aas-core3.0 {v['aas-core3.0']}, orjson {v['orjson']})"
          f" vs basyx-python-sdk {v['basyx-python-sdk']}")
    print(f"Python {result['python']} on {result['platform']}; best of {result['repeat']} runs "
          f"(median in brackets), gc {result['gc']}; MB = 10^6 bytes")
    print(f"Input: {inp['json_pretty_bytes'] / MB:.2f} MB pretty JSON ({inp['json_compact_bytes'] / MB:.2f} MB "
          f"compact); {inp['shells']} shells, {inp['submodels']} submodels, "
          f"{inp['concept_descriptions']} concept descriptions, {inp['submodel_elements']:,} submodel elements, "
          f"{inp['model_objects']:,} model objects")
    print()
    header = (f"{'operation':<30} {'project ms':>20} {'basyx ms':>20} {'speed-up':>9} "
              f"{'project MB/s':>13} {'basyx MB/s':>11}")
    print(header)
    print("-" * len(header))

    def cell(t: dict[str, Any] | None) -> str:
        return "—" if t is None else f"{t['best_ms']:.0f} ({t['median_ms']:.0f})"

    for r in result["results"]:
        speed = "—" if r["speedup_best"] is None else f"{r['speedup_best']:.1f}×"
        pm = "—" if r["project_mb_s"] is None else f"{r['project_mb_s']:.1f}"
        bm = "—" if r["basyx_mb_s"] is None else f"{r['basyx_mb_s']:.1f}"
        print(f"{r['operation']:<30} {cell(r['project']):>20} {cell(r['basyx']):>20} {speed:>9} {pm:>13} {bm:>11}")
    print()
    print("speed-up = basyx best / project best. basyx parse is read_aas_json_file(BytesIO, failsafe=False), the")
    print("same figure on each parse row (basyx checks its constraints while constructing). basyx writes are")
    print("object_store_to_json(store[, indent=2]).encode(); basyx XML parse reads the project's XML with the")
    print("namespace renamed to 3/1; AASX rows: each library reads and writes its own package (the project's")
    print("has a pretty JSON part, basyx's a compact one), MB/s there is of the zipped package.")
    print()
    print("Interoperability:")
    for key, entry in result["interop"].items():
        status = "ok" if entry.get("ok") else "FAILED"
        lists = ("differences", "verify_error_kinds")
        extra = {k: v for k, v in entry.items() if k not in ("ok", *lists) and v is not None}
        print(f"  {key}: {status} {json.dumps(extra, ensure_ascii=False) if extra else ''}".rstrip())
        for name in lists:
            if entry.get(name):
                print(f"    {name.replace('_', ' ')}:")
                for line in entry[name]:
                    print(f"      {line}")
    print(f"\nwall time {result['wall_s']} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Generate a realistic AAS 3.0 environment and time TwinEdge's JSON/XML/AASX I/O against "
                    "basyx-python-sdk 2.2's adapters (best and median of N runs, one process).",
        epilog="Progress goes to stderr; the table (or --json) to stdout. Example: "
               "python bench/aas_serde.py --size-mb 10 --repeat 5",
)
    parser.add_argument("--size-mb", type=float, default=10.0,
                        help="approximate size of the generated pretty-printed JSON in MB (10^6 bytes); "
                             "default %(default)s")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per operation; default %(default)s")
    parser.add_argument("--seed", type=int, default=61360, help="seed of the data generator; default %(default)s")
    parser.add_argument("--out", metavar="FILE", help="keep the generated JSON at FILE (default: a temp dir, "
                                                      "removed when the script ends)")
    parser.add_argument("--formats", default="json,xml,aasx",
                        help="comma-separated subset of json,xml,aasx to benchmark; default %(default)s")
    parser.add_argument("--file-api", action="store_true",
                        help="also time basyx write_aas_json_file (json.dump into a BytesIO)")
    parser.add_argument("--no-gc", action="store_true", help="disable the cyclic garbage collector while timing")
    parser.add_argument("--json", action="store_true", help="print one JSON object of the figures, not a table")
    parser.add_argument("--profile", choices=PROFILE_OPS, metavar="OP",
                        help=f"instead of benchmarking, cProfile one project operation: {', '.join(PROFILE_OPS)}")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.size_mb <= 0:
        parser.error("--repeat must be >= 1 and --size-mb > 0")
    if args.no_gc:
        gc.disable()
    result = run(args)
    if not result:
        return 0
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
