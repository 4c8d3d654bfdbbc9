"""Small constructors for the submodel elements the builders emit.

They exist so that every builder writes semanticIds, language strings and XSD values the same way:
a semanticId is always an ExternalReference with one GlobalReference key, multi-language text is
given as ``str`` (English) or a ``{language: text}`` mapping, and Python values are rendered in the
lexical form of their XSD type (aas-core verifies these, and readers parse them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from aas_core3 import types as aas

#: Multi-language text: plain ``str`` is English, a mapping gives one text per BCP 47 language tag.
Text = str | Mapping[str, str]
#: A Python value rendered into a Property's value by :func:`xsd_value`.
Scalar = str | int | float | bool | dt.date | dt.datetime


@dataclass(frozen=True)
class FileRef:
    """A File element's content: a path inside the AASX package (e.g. ``/aasx/files/logo.png``) or a URL."""

    path: str
    content_type: str


def global_ref(iri: str) -> aas.Reference:
    """An ExternalReference to a global concept (IRI or IRDI): the form every semanticId takes here."""
    return aas.Reference(aas.ReferenceTypes.EXTERNAL_REFERENCE, [aas.Key(aas.KeyTypes.GLOBAL_REFERENCE, iri)])


def submodel_ref(submodel_id: str) -> aas.Reference:
    """A ModelReference to a submodel, as a shell lists its submodels."""
    return aas.Reference(aas.ReferenceTypes.MODEL_REFERENCE, [aas.Key(aas.KeyTypes.SUBMODEL, submodel_id)])


def lang_texts(text: Text) -> list[aas.LangStringTextType]:
    items = {"en": text} if isinstance(text, str) else text
    return [aas.LangStringTextType(language, value) for language, value in items.items()]


def numbered(id_short: str, index: int) -> str:
    """The IDTA naming of repeated elements (``Name{00}``): ``numbered("Marking", 0) == "Marking01"``."""
    return f"{id_short}{index + 1:02d}"


def xsd_value(value: Scalar, value_type: aas.DataTypeDefXSD) -> str:
    """Render `value` in the lexical space of `value_type`; datetimes must be timezone-aware (UTC)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError(f"datetime {value.isoformat()} has no timezone; TwinEdge timestamps are UTC-aware")
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value_type in (aas.DataTypeDefXSD.DOUBLE, aas.DataTypeDefXSD.FLOAT):
        return repr(value).replace("inf", "INF").replace("nan", "NaN")
    return str(value)


def prop(
    id_short: str | None,
    value_type: aas.DataTypeDefXSD,
    semantic_id: str,
    value: Scalar | None = None,
    *,
    description: Text | None = None,
    display_name: Text | None = None,
) -> aas.Property:
    return aas.Property(
        value_type,
        id_short=id_short,
        display_name=_names(display_name),
        description=lang_texts(description) if description is not None else None,
        semantic_id=global_ref(semantic_id),
        value=None if value is None else xsd_value(value, value_type),
    )


def mlp(id_short: str | None, semantic_id: str, text: Text | None = None) -> aas.MultiLanguageProperty:
    return aas.MultiLanguageProperty(
        id_short=id_short, semantic_id=global_ref(semantic_id), value=lang_texts(text) if text else None
    )


def file_element(id_short: str | None, semantic_id: str, ref: FileRef) -> aas.File:
    return aas.File(ref.content_type, id_short=id_short, semantic_id=global_ref(semantic_id), value=ref.path)


def smc(
    id_short: str | None,
    semantic_id: str,
    children: Iterable[aas.SubmodelElement | None] = (),
    *,
    description: Text | None = None,
    display_name: Text | None = None,
) -> aas.SubmodelElementCollection:
    """A collection; ``None`` children (optional elements without a value) are left out."""
    value = [c for c in children if c is not None]
    return aas.SubmodelElementCollection(
        id_short=id_short,
        display_name=_names(display_name),
        description=lang_texts(description) if description is not None else None,
        semantic_id=global_ref(semantic_id),
        value=value or None,
    )


def smc_list(
    id_short: str,
    semantic_id: str,
    items: Sequence[aas.SubmodelElementCollection],
    *,
    item_semantic_id: str | None = None,
    order_relevant: bool | None = None,
) -> aas.SubmodelElementList:
    """A SubmodelElementList of collections (items carry no idShort, AASd-120)."""
    return aas.SubmodelElementList(
        aas.AASSubmodelElements.SUBMODEL_ELEMENT_COLLECTION,
        id_short=id_short,
        semantic_id=global_ref(semantic_id),
        order_relevant=order_relevant,
        semantic_id_list_element=global_ref(item_semantic_id) if item_semantic_id else None,
        value=list(items) or None,
    )


def instance_submodel(
    submodel_id: str,
    id_short: str,
    semantic_id: str,
    version: tuple[str, str],
    elements: Iterable[aas.SubmodelElement | None],
) -> aas.Submodel:
    """An Instance-kind submodel; `version` is the (version, revision) of the template it follows."""
    return aas.Submodel(
        submodel_id,
        id_short=id_short,
        administration=aas.AdministrativeInformation(version=version[0], revision=version[1]),
        kind=aas.ModellingKind.INSTANCE,
        semantic_id=global_ref(semantic_id),
        submodel_elements=[e for e in elements if e is not None] or None,
    )


def resolve(submodel: aas.Submodel, id_short_path: str) -> aas.SubmodelElement | None:
    """The element at a dotted idShortPath (``A.B[2].C``) of `submodel`, or None."""
    children: Sequence[aas.SubmodelElement] = submodel.submodel_elements or []
    found: aas.SubmodelElement | None = None
    for part in id_short_path.split("."):
        name, _, rest = part.partition("[")
        found = next((c for c in children if c.id_short == name), None) if name else None
        indices = [int(i) for i in rest.rstrip("]").split("][") if i.isdigit()] if rest else []
        for index in indices:
            items = found.value if isinstance(found, aas.SubmodelElementList) else None
            found = items[index] if items is not None and 0 <= index < len(items) else None
        if found is None:
            return None
        children = _children(found)
    return found


def _children(element: aas.SubmodelElement) -> Sequence[aas.SubmodelElement]:
    if isinstance(element, aas.SubmodelElementCollection | aas.SubmodelElementList):
        return element.value or []
    if isinstance(element, aas.Entity):
        return element.statements or []
    return []


def _names(text: Text | None) -> list[aas.LangStringNameType] | None:
    if text is None:
        return None
    items = {"en": text} if isinstance(text, str) else text
    return [aas.LangStringNameType(language, value) for language, value in items.items()]
