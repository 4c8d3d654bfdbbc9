"""Digital Nameplate for industrial equipment 3.0 (IDTA 02006-3-0).

Mandatory elements (URIOfTheProduct, ManufacturerName, ManufacturerProductDesignation,
AddressInformation, OrderCodeOfManufacturer) are required fields of :class:`NameplateData`; every
other field is optional and its element appears only when a value is given. AddressInformation is
the template's drop-in of Contact Information (IDTA 02002-1-0), whose semanticIds its children use.
AssetSpecificProperties is not built: TwinEdge puts equipment properties into Technical Data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from aas_core3 import types as aas

from aas_models.builders.elements import (
    FileRef,
    Text,
    file_element,
    instance_submodel,
    mlp,
    numbered,
    prop,
    smc,
    smc_list,
)

SEMANTIC_ID = "https://admin-shell.io/idta/nameplate/3/0/Nameplate"
ID_SHORT = "Nameplate"
VERSION = ("3", "0")

_S = aas.DataTypeDefXSD.STRING
_DATE = aas.DataTypeDefXSD.DATE
_ADDRESS = "https://admin-shell.io/zvei/nameplate/1/0/ContactInformations/AddressInformation"
_MARKINGS = "0112/2///61360_7#AAS006#001"
_MARKING = "0112/2///61360_7#AAS009#001"


@dataclass(frozen=True)
class Address:
    """AddressInformation (drop-in of Contact Information 1.0); every part is optional text."""

    company: Text | None = None
    street: Text | None = None
    zipcode: Text | None = None
    city_town: Text | None = None
    state_county: Text | None = None
    national_code: Text | None = None


@dataclass(frozen=True)
class Marking:
    """One entry of Markings (e.g. CE); MarkingName and MarkingFile are mandatory in the template."""

    name: str
    file: FileRef
    designation_of_certificate_or_approval: str | None = None
    issue_date: dt.date | None = None
    expiry_date: dt.date | None = None
    additional_texts: Sequence[str] = ()


@dataclass(frozen=True)
class NameplateData:
    uri_of_the_product: str
    manufacturer_name: Text
    manufacturer_product_designation: Text
    order_code_of_manufacturer: str
    address: Address = field(default_factory=Address)
    manufacturer_product_root: Text | None = None
    manufacturer_product_family: Text | None = None
    manufacturer_product_type: str | None = None
    product_article_number_of_manufacturer: str | None = None
    serial_number: str | None = None
    year_of_construction: str | None = None
    date_of_manufacture: dt.date | None = None
    hardware_version: str | None = None
    firmware_version: str | None = None
    software_version: str | None = None
    country_of_origin: str | None = None
    unique_facility_identifier: str | None = None
    company_logo: FileRef | None = None
    markings: Sequence[Marking] = ()


def _opt_prop(id_short: str, semantic_id: str, value: str | dt.date | None,
              value_type: aas.DataTypeDefXSD = _S) -> aas.Property | None:
    return None if value is None else prop(id_short, value_type, semantic_id, value)


def _opt_mlp(id_short: str, semantic_id: str, text: Text | None) -> aas.MultiLanguageProperty | None:
    return None if text is None else mlp(id_short, semantic_id, text)


def _address(address: Address) -> aas.SubmodelElementCollection:
    return smc("AddressInformation", _ADDRESS, [
        _opt_mlp("Company", "0173-1#02-AAW001#001", address.company),
        _opt_mlp("Street", "0173-1#02-AAO128#002", address.street),
        _opt_mlp("Zipcode", "0173-1#02-AAO129#002", address.zipcode),
        _opt_mlp("CityTown", "0173-1#02-AAO132#002", address.city_town),
        _opt_mlp("StateCounty", "0173-1#02-AAO133#002", address.state_county),
        _opt_mlp("NationalCode", "0173-1#02-AAO134#002", address.national_code),
    ])


def _marking(marking: Marking) -> aas.SubmodelElementCollection:
    return smc(None, _MARKING, [
        prop("MarkingName", _S, "0112/2///61987#ABA231#009", marking.name),
        _opt_prop("DesignationOfCertificateOrApproval", "0112/2///61987#ABH783#003",
                  marking.designation_of_certificate_or_approval),
        _opt_prop("IssueDate", "0112/2///61987#ABO097#001", marking.issue_date, _DATE),
        _opt_prop("ExpiryDate", "0112/2///61987#ABH830#002", marking.expiry_date, _DATE),
        file_element("MarkingFile", "0112/2///61987#ABO100#002", marking.file),
        *(prop(numbered("MarkingAdditionalText", i), _S, "0112/2///61987#ABB146#007", text)
          for i, text in enumerate(marking.additional_texts)),
    ])


def build_nameplate(data: NameplateData, submodel_id: str) -> aas.Submodel:
    """The Nameplate submodel of one asset instance."""
    d = data
    markings = (
        smc_list("Markings", _MARKINGS, [_marking(m) for m in d.markings]) if d.markings else None
    )
    return instance_submodel(submodel_id, ID_SHORT, SEMANTIC_ID, VERSION, [
        prop("URIOfTheProduct", aas.DataTypeDefXSD.ANY_URI, "0112/2///61987#ABN590#002", d.uri_of_the_product),
        mlp("ManufacturerName", "0112/2///61987#ABA565#009", d.manufacturer_name),
        mlp("ManufacturerProductDesignation", "0112/2///61987#ABA567#009", d.manufacturer_product_designation),
        _address(d.address),
        _opt_mlp("ManufacturerProductRoot", "0112/2///61360_7#AAS011#001", d.manufacturer_product_root),
        _opt_mlp("ManufacturerProductFamily", "0112/2///61987#ABP464#002", d.manufacturer_product_family),
        _opt_prop("ManufacturerProductType", "0112/2///61987#ABA300#008", d.manufacturer_product_type),
        prop("OrderCodeOfManufacturer", _S, "0112/2///61987#ABA950#008", d.order_code_of_manufacturer),
        _opt_prop("ProductArticleNumberOfManufacturer", "0112/2///61987#ABA581#007",
                  d.product_article_number_of_manufacturer),
        _opt_prop("SerialNumber", "0112/2///61987#ABA951#009", d.serial_number),
        _opt_prop("YearOfConstruction", "0112/2///61987#ABP000#002", d.year_of_construction),
        _opt_prop("DateOfManufacture", "0112/2///61987#ABB757#007", d.date_of_manufacture, _DATE),
        _opt_prop("HardwareVersion", "0112/2///61987#ABA926#008", d.hardware_version),
        _opt_prop("FirmwareVersion", "0112/2///61987#ABA302#006", d.firmware_version),
        _opt_prop("SoftwareVersion", "0112/2///61987#ABA601#008", d.software_version),
        _opt_prop("CountryOfOrigin", "0112/2///61987#ABP462#001", d.country_of_origin),
        _opt_prop("UniqueFacilityIdentifier", "https://admin-shell.io/idta/nameplate/3/0/UniqueFacilityIdentifier",
                  d.unique_facility_identifier),
        file_element("CompanyLogo", "0112/2///61987#ABP463#001", d.company_logo) if d.company_logo else None,
        markings,
    ])
