"""Technical Data 2.0 (IDTA 02003-2-0).

GeneralInformation is mandatory, with its four mandatory children as required fields of
:class:`GeneralInformation`. The equipment's own properties go into one TechnicalPropertyArea (the
template's list of areas with arbitrary content); each keeps its own semanticId, ideally an ECLASS
or IEC CDD IRDI, otherwise a concept of the reference model (see :mod:`aas_models.ids`).
SpecificDescriptions is not built.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from aas_core3 import types as aas

from aas_models.builders.elements import (
    FileRef,
    Scalar,
    Text,
    file_element,
    instance_submodel,
    mlp,
    numbered,
    prop,
    smc,
    smc_list,
)

SEMANTIC_ID = "0173-1#01-AHX837#002"
ID_SHORT = "TechnicalData"
VERSION = ("2", "0")

_S = aas.DataTypeDefXSD.STRING
_CLASSIFICATIONS = "0173-1#02-ABK162#002"
_CLASSIFICATION = "0173-1#02-ABK162#002/0173-1#01-AHX839#002"
_AREAS = "0173-1#02-ABK163#002"
_AREA = "0173-1#02-ABL358#002/0173-1#01-AHX773#002"
_IMAGES = "0173-1#02-ABM220#001"
_IMAGE = "0173-1#02-ABM220#001/0173-1#01-AHY911#001"


@dataclass(frozen=True)
class ProductImage:
    file: FileRef
    note: Text | None = None


@dataclass(frozen=True)
class GeneralInformation:
    manufacturer_name: str
    manufacturer_product_designation: Text
    manufacturer_article_number: str
    manufacturer_order_code: str
    company_logo: FileRef | None = None
    product_images: Sequence[ProductImage] = ()


@dataclass(frozen=True)
class ProductClassification:
    """One classification of the product, e.g. system "ECLASS", version "13.0", class id "36-10-01-01"."""

    classification_system: str
    product_class_id: str
    product_class_coded_name: str
    classification_system_version: str | None = None
    classification_system_url: str | None = None
    product_class_name: Text | None = None


@dataclass(frozen=True)
class TechnicalProperty:
    """An equipment property; `id_short` is free, `semantic_id` gives its meaning (and its CD its unit)."""

    id_short: str
    value: Scalar
    value_type: aas.DataTypeDefXSD
    semantic_id: str
    display_name: Text | None = None


@dataclass(frozen=True)
class FurtherInformation:
    valid_date: dt.date
    text_statements: Sequence[Text] = ()


@dataclass(frozen=True)
class TechnicalDataInput:
    general: GeneralInformation
    classifications: Sequence[ProductClassification] = ()
    technical_properties: Sequence[TechnicalProperty] = ()
    further_information: FurtherInformation | None = None


def _general(g: GeneralInformation) -> aas.SubmodelElementCollection:
    images = [
        smc(None, _IMAGE, [
            file_element("ImageFile", "0173-1#02-ABK291#002", image.file),
            mlp("ImageNote", "0173-1#02-ABL423#001", image.note) if image.note is not None else None,
        ])
        for image in g.product_images
    ]
    return smc("GeneralInformation", "0173-1#02-ABK161#002/0173-1#01-AHX838#002", [
        prop("ManufacturerName", _S, "0173-1#02-AAO677#004", g.manufacturer_name),
        file_element("CompanyLogo", "0173-1#02-ABI776#002", g.company_logo) if g.company_logo else None,
        mlp("ManufacturerProductDesignation", "0173-1#02-AAW338#003", g.manufacturer_product_designation),
        prop("ManufacturerArticleNumber", _S, "0173-1#02-AAO676#005", g.manufacturer_article_number),
        prop("ManufacturerOrderCode", _S, "0173-1#02-AAO227#004", g.manufacturer_order_code),
        smc_list("ProductImages", _IMAGES, images, item_semantic_id=_IMAGE) if images else None,
    ])


def _classification(c: ProductClassification) -> aas.SubmodelElementCollection:
    return smc(None, _CLASSIFICATION, [
        prop("ClassificationSystem", _S, "0173-1#02-ABL424#001", c.classification_system),
        prop("ClassificationSystemVersion", _S, "0173-1#02-AAR710#003", c.classification_system_version)
        if c.classification_system_version is not None else None,
        prop("ClassificationSystemUrl", _S,
             "https://admin-shell.io/IDTA/TechnicalData/ProductClassifications/ProduktClassification/"
             "ClassificationSystemUrl/2/0", c.classification_system_url)
        if c.classification_system_url is not None else None,
        prop("ProductClassId", _S, "0173-1#02-ABG776#003", c.product_class_id),
        prop("ProductClassCodedName", _S, "0173-1#02-ABK128#002", c.product_class_coded_name),
        mlp("ProductClassName", "0173-1#02-ABK273#002", c.product_class_name)
        if c.product_class_name is not None else None,
    ])


def _further(f: FurtherInformation) -> aas.SubmodelElementCollection:
    return smc("FurtherInformation", "0173-1#02-ABK164#002", [
        *(mlp(numbered("TextStatement", i), "0173-1#02-ABK134#002", text)
          for i, text in enumerate(f.text_statements)),
        prop("ValidDate", aas.DataTypeDefXSD.DATE, "0173-1#02-ABL775#001", f.valid_date),
    ])


def build_technical_data(data: TechnicalDataInput, submodel_id: str) -> aas.Submodel:
    """The TechnicalData submodel; technical properties form a single TechnicalPropertyArea."""
    classifications = (
        smc_list("ProductClassifications", _CLASSIFICATIONS, [_classification(c) for c in data.classifications],
                 item_semantic_id=_CLASSIFICATION, order_relevant=False)
        if data.classifications else None
    )
    area = smc(None, _AREA, [
        prop(p.id_short, p.value_type, p.semantic_id, p.value, display_name=p.display_name)
        for p in data.technical_properties
    ])
    areas = (
        smc_list("TechnicalPropertyAreas", _AREAS, [area], item_semantic_id=_AREA)
        if data.technical_properties else None
    )
    return instance_submodel(submodel_id, ID_SHORT, SEMANTIC_ID, VERSION, [
        _general(data.general),
        classifications,
        areas,
        _further(data.further_information) if data.further_information else None,
    ])
