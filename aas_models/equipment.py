"""Equipment specs (YAML): an equipment *type* (manufacturer, product, technical properties, live
signals), validated with errors that name the file and field. :mod:`aas_models.twin` instantiates
a spec for one asset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import yaml
from aas_core3 import types as aas
from aas_core3 import verification
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from aas_models.builders.elements import Text, xsd_value
from aas_models.errors import AasError, Problem, field_path

#: Equipment specs shipped with TwinEdge, e.g. ``SPECS_DIR / "hydraulic-press.yaml"``.
SPECS_DIR = Path(__file__).with_name("specs")

class EquipmentSpecError(AasError):
    """An equipment spec is unreadable or invalid; each problem names the file and the field."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _id_short(text: str) -> str:
    if not verification.matches_id_short(text):
        raise ValueError(f"{text!r} is not an AAS idShort: start with a letter, then letters, digits or _")
    return text


def _lang_text(text: Text) -> Text:
    if isinstance(text, str):
        if not text.strip():
            raise ValueError("text must not be empty")
        return text
    if "en" not in text:
        raise ValueError("give the text at least in English ('en'), e.g. {en: ..., ko: ...}")
    bad = [lang for lang in text if not verification.matches_bcp_47(lang)]
    if bad:
        raise ValueError(f"{bad} are not BCP 47 language tags such as 'en', 'ko', 'de'")
    return text


def _value_type(text: str) -> str:
    try:
        aas.DataTypeDefXSD(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an XSD value type, e.g. xs:double, xs:long, xs:string") from None
    return text


def _slug(text: str) -> str:
    if not text or not all(c.isascii() and (c.isalnum() or c == "-") for c in text) or text != text.lower():
        raise ValueError(f"{text!r} must be lower-case letters, digits and '-', e.g. 'hydraulic-press'")
    return text


IdShort = Annotated[str, AfterValidator(_id_short)]
LangText = Annotated[str | dict[str, str], AfterValidator(_lang_text)]
ValueType = Annotated[str, AfterValidator(_value_type)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SignalSpec(_Spec):
    """A live signal; without `semantic_id` its concept gets a reference-model id (ids module)."""

    name: IdShort
    value_type: ValueType
    description: LangText
    unit: str | None = None
    preferred_name: LangText | None = None
    semantic_id: str | None = None

    @field_validator("name")
    @classmethod
    def _not_time(cls, name: str) -> str:
        if name == "Time":
            raise ValueError("a signal must not be named 'Time' (the time column of the TimeSeries record)")
        return name


class TechnicalPropertySpec(_Spec):
    """A technical property; `value_type` defaults from the YAML value (bool, int, float, str)."""

    name: IdShort
    value_type: ValueType | None = None  # before `value`, whose validator reads it
    value: str | int | float | bool
    description: LangText
    unit: str | None = None
    preferred_name: LangText | None = None
    semantic_id: str | None = None

    @field_validator("value")
    @classmethod
    def _value_matches_type(cls, value: str | int | float | bool, info: ValidationInfo) -> str | int | float | bool:
        if "value_type" not in info.data:  # value_type itself was invalid and is reported on its own
            return value
        value_type = aas.DataTypeDefXSD(info.data["value_type"] or _inferred_type(value))
        if not verification.value_consistent_with_xsd_type(xsd_value(value, value_type), value_type):
            raise ValueError(f"{value!r} is not a valid {value_type.value}")
        return value

    @property
    def xsd_type(self) -> str:
        return self.value_type or _inferred_type(self.value)


def _inferred_type(value: str | int | float | bool) -> str:
    inferred = {bool: "xs:boolean", int: "xs:int", float: "xs:double"}
    return inferred.get(type(value), "xs:string")


class AddressSpec(_Spec):
    company: LangText | None = None
    street: LangText | None = None
    zipcode: LangText | None = None
    city_town: LangText | None = None
    state_county: LangText | None = None
    national_code: LangText | None = None


class ClassificationSpec(_Spec):
    system: str
    class_id: str
    coded_name: str
    version: str | None = None
    url: str | None = None
    class_name: LangText | None = None


class EquipmentSpec(_Spec):
    """An equipment type: what its twins share. Load from YAML with :func:`load_spec`."""

    equipment_type: Annotated[str, AfterValidator(_slug)]
    version: str = "1.0"
    #: What the equipment is, for people (a reference model's README); not part of the twin.
    description: LangText | None = None
    #: Version segment of the model's own concept ids (default: `version`). A new model version that
    #: keeps the concepts' meaning keeps this, so that its semanticIds do not change.
    concept_version: str | None = None
    manufacturer_name: str
    product_designation: LangText
    order_code: str
    article_number: str
    product_family: LangText | None = None
    product_type: str | None = None
    country_of_origin: str | None = None
    address: AddressSpec = Field(default_factory=AddressSpec)
    classifications: list[ClassificationSpec] = Field(default_factory=list)
    technical_properties: list[TechnicalPropertySpec] = Field(default_factory=list)
    signals: list[SignalSpec] = Field(min_length=1)

    @field_validator("signals", "technical_properties")
    @classmethod
    def _unique_names(cls, items: list[Any]) -> list[Any]:
        names = [i.name for i in items]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"names must be unique; repeated: {', '.join(duplicates)}")
        return items


def parse_spec(data: Any, name: str) -> EquipmentSpec:
    """Validate already-parsed YAML/JSON data; EquipmentSpecError names each bad field."""
    try:
        return EquipmentSpec.model_validate(data)
    except ValidationError as exc:
        raise EquipmentSpecError([
            Problem(name, field_path(error["loc"]) or "(document)", "spec-" + error["type"],
                    error["msg"].removeprefix("Value error, "))
            for error in exc.errors()
        ]) from None


def load_spec(path: Path) -> EquipmentSpec:
    """Read and validate an equipment spec YAML file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EquipmentSpecError([Problem(str(path), "", "spec-read", f"cannot read the spec: {exc}")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise EquipmentSpecError([Problem(str(path), where, "spec-yaml", f"not valid YAML: {exc}")]) from None
    return parse_spec(data, str(path))
