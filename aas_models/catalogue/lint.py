"""``twinedge models lint``: everything a reviewer would otherwise check by hand, per model folder.

Per folder: metadata.yaml is valid; model.json parses, passes the metamodel 3.0 constraints and the
project lint (:mod:`aas_models.validation`) and aas-test-engines' file check; generated files are
up to date; and the catalogue's own rules:

==================================  ==============================================================
rule                                what it wants
==================================  ==============================================================
catalogue/semantic-id-whitespace    no whitespace anywhere in a semanticId (it then matches nothing)
catalogue/semantic-id-unresolved    every semanticId is a concept description in the model or an
                                    external dictionary id (ECLASS / IEC CDD IRDI, admin-shell.io)
catalogue/missing-unit              a measured value (concept of type *_MEASURE) has a unit
catalogue/missing-data-type         a Property's own concept says its IEC 61360 data type
catalogue/cardinality-spelling      cardinality qualifiers are spelled ``SMT/Cardinality`` with a
                                    value One, ZeroToOne, ZeroToMany or OneToMany
catalogue/version-mismatch          shell administration, metadata, spec and template id = folder
catalogue/not-template              the shell is of asset kind Type, the submodels of kind Template
catalogue/idshort-style             idShorts are UpperCamelCase (warning)
catalogue/duplicate-id              a shell or submodel id is used by one model only; a concept id
                                    shared by models means the same everywhere
catalogue/released-changed          a released version's content equals its recorded hash
catalogue/stale                     model.json and README.md are what ``models build`` makes
catalogue/binding                   agent-binding.yaml binds existing data points
==================================  ==============================================================

Each finding names the file, the idShortPath, the rule and the fix. Many folders are linted in
parallel processes (aas-test-engines' check is the costly part).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from aas_models.builders import operational_data
from aas_models.catalogue import maintenance
from aas_models.catalogue.layout import (
    BINDING,
    METADATA,
    MODEL,
    README,
    SPEC,
    CatalogueError,
    Metadata,
    ModelFolder,
    content_hash,
    discover,
    load_metadata,
    load_yaml,
)
from aas_models.catalogue.scaffold import generated_files
from aas_models.catalogue.template import TemplateError, children, dump_model, parse_template_shell_id
from aas_models.errors import AasError, Problem
from aas_models.jsonio import environment_from_jsonable, load_jsonable
from aas_models.location import JsonPath, describe, objects
from aas_models.package import AasPackage
from aas_models.validation import validate_package

#: Ids that name a concept in a published dictionary rather than in the model.
EXTERNAL_ID = re.compile(r"^(\d{4}-\d#\d{2}-[A-Z]{3}\d{3}#\d{3}|0112/\d///|https?://admin-shell\.io/)")
MEASURE_TYPES = {"REAL_MEASURE", "INTEGER_MEASURE", "RATIONAL_MEASURE"}
NUMERIC_TYPES = {
    "xs:double", "xs:float", "xs:decimal", "xs:integer", "xs:long", "xs:int", "xs:short", "xs:byte",
    "xs:nonNegativeInteger", "xs:positiveInteger", "xs:unsignedLong", "xs:unsignedInt", "xs:unsignedShort",
    "xs:unsignedByte", "xs:nonPositiveInteger", "xs:negativeInteger",
}
ID_SHORT_STYLE = re.compile(r"^[A-Z][A-Za-z0-9]*$")
CARDINALITY_LIKE = re.compile(r"cardinality|multiplicity|^smt/", re.IGNORECASE)
#: Concept ids a model owns (its own namespace), checked for equal meaning across the catalogue.
OWN_CONCEPT = "urn:twinedge:cd:"
_IDENTIFIABLE_KEYS = ("assetAdministrationShells", "submodels", "conceptDescriptions")
#: Where aas-test-engines' paths name the first item of a top-level list (meta-model or constraint spelling).
_FIRST_ITEM = re.compile(r"(@ /(?:assetAdministrationShells|asset_administration_shells|submodels|conceptDescriptions"
                         r"|concept_descriptions)/)0(?=/|$|\s)")

#: aas-test-engines' findings: (where, message, severity).
Finding = tuple[str, str, str]
#: Findings per checked identifiable (sha256 of its JSON), shared by the folders of one batch.
Memo = dict[str, list[Finding]]


@dataclass
class FolderReport:
    """What one folder's lint found, plus the ids the catalogue-wide checks need."""

    label: str
    problems: list[Problem] = field(default_factory=list)
    identifiables: dict[str, str] = field(default_factory=dict)  # shell/submodel id -> file
    concepts: dict[str, str] = field(default_factory=dict)  # own concept id -> sha256 of its JSON


@dataclass(frozen=True)
class LintOptions:
    conformance: bool = True  # run aas-test-engines' file check
    #: Keep aas-test-engines' findings per model.json content here (its check is 80% of the time and a
    #: model that did not change needs no new check). None: no cache.
    cache_dir: Path | None = None


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/twinedge/lint`` (``~/.cache/twinedge/lint``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "twinedge" / "lint"


def lint_paths(paths: Sequence[Path], *, options: LintOptions = LintOptions(),
               jobs: int | None = None) -> list[Problem]:
    """Lint every model folder under `paths`, then the catalogue-wide rules across them."""
    folders = discover(paths)
    if not folders:
        return [Problem(", ".join(str(p) for p in paths), "", "catalogue/empty",
                        f"no model folder (<type>/<major>.<minor>/{MODEL}) found here")]
    workers = min(jobs or os.cpu_count() or 1, len(folders))
    if workers > 1:
        # A few batches per process balance the load; each batch shares one memo of checked pieces.
        batches = [folders[i::workers * 4] for i in range(min(workers * 4, len(folders)))]
        with ProcessPoolExecutor(workers) as pool:
            reports = [r for batch in pool.map(_lint_batch, batches, [options] * len(batches)) for r in batch]
    else:
        reports = _lint_batch(folders, options)
    problems = [p for r in reports for p in r.problems]
    problems.extend(across(reports))
    return problems


def _lint_batch(folders: Sequence[ModelFolder], options: LintOptions) -> list[FolderReport]:
    memo: Memo = {}
    return [lint_folder(f, options, memo) for f in folders]


def across(reports: Sequence[FolderReport]) -> Iterator[Problem]:
    """Ids unique across the catalogue; a shared concept id has the same content everywhere."""
    owners: dict[str, tuple[str, str]] = {}
    concepts: dict[str, tuple[str, str]] = {}
    for report in reports:
        for ident, file in report.identifiables.items():
            if ident in owners:
                yield Problem(file, f"id {ident!r}", "catalogue/duplicate-id",
                              f"also used by {owners[ident][0]}: every model version needs its own ids; "
                              "build the model from its folder (twinedge models build) so that the ids follow "
                              "<type>/<version>")
            else:
                owners[ident] = (report.label, file)
        for ident, digest in report.concepts.items():
            first = concepts.setdefault(ident, (report.label, digest))
            if first[1] != digest:
                yield Problem(f"{report.label}/{MODEL}", f"concept description {ident!r}", "catalogue/duplicate-id",
                              f"{first[0]} defines the same concept id differently; a concept id must mean one "
                              "thing: give the changed concept a new name or raise concept_version")


def lint_folder(folder: ModelFolder, options: LintOptions = LintOptions(), memo: Memo | None = None) -> FolderReport:
    """`memo` carries aas-test-engines' findings per identifiable between folders (shared concepts)."""
    report = FolderReport(folder.label)
    report.problems.extend(_lint(folder, options, report, {} if memo is None else memo))
    return report


def _lint(folder: ModelFolder, options: LintOptions, report: FolderReport, memo: Memo) -> Iterator[Problem]:
    model_file = str(folder.file(MODEL))
    metadata: Metadata | None = None
    try:
        metadata = load_metadata(folder)
    except CatalogueError as exc:
        yield from exc.problems
    try:
        data = folder.file(MODEL).read_bytes()
        jsonable = load_jsonable(data, model_file)
        environment = environment_from_jsonable(jsonable, model_file)
    except OSError as exc:
        yield Problem(model_file, "", "catalogue/read", f"cannot read: {exc.strerror}")
        return
    except AasError as exc:
        yield from getattr(exc, "problems", [Problem(model_file, "", "aas-structure", str(exc))])
        return
    yield from validate_package(AasPackage(environment), model_file)
    if options.conformance:
        yield from _cached_conformance(data, jsonable, model_file, options.cache_dir, memo)
    yield from _structure(folder, jsonable, metadata, model_file)
    yield from semantic_rules(jsonable, model_file)
    if metadata is not None:
        yield from _released(folder, metadata)
        yield from _generated(folder, metadata, data)
    yield from _binding(folder, jsonable)
    for key in ("assetAdministrationShells", "submodels"):
        for item in jsonable.get(key) or []:
            report.identifiables[str(item.get("id"))] = model_file
    for cd in jsonable.get("conceptDescriptions") or []:
        if str(cd.get("id", "")).startswith(OWN_CONCEPT):
            report.concepts[cd["id"]] = hashlib.sha256(orjson.dumps(cd, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _cached_conformance(data: bytes, jsonable: Any, name: str, cache_dir: Path | None,
                        memo: Memo) -> Iterator[Problem]:
    if cache_dir is None:
        yield from _conformance(jsonable, name, memo)
        return
    try:
        from importlib.metadata import version
        tool = version("aas_test_engines")
    except ImportError:  # importlib.metadata.PackageNotFoundError is one: _conformance says so
        yield from _conformance(jsonable, name, memo)
        return
    entry = cache_dir / f"{hashlib.sha256(data + tool.encode()).hexdigest()}.json"
    try:
        found = orjson.loads(entry.read_bytes())
        yield from (Problem(name, where, rule, message, severity) for where, rule, message, severity in found)
        return
    except (OSError, ValueError):
        pass
    problems = list(_conformance(jsonable, name, memo))
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(orjson.dumps([[p.where, p.rule, p.message, p.severity] for p in problems]))
        tmp.replace(entry)
    except OSError:
        pass  # a read-only home: just no cache
    yield from problems


def _conformance(jsonable: Any, name: str, memo: Memo) -> Iterator[Problem]:
    """aas-test-engines' file check, one identifiable at a time where that finds the same.

    The 3.0 Environment has no constraint across its identifiables, so a shell, submodel or concept
    description checked alone gives the findings it gives inside the whole file (paths re-indexed), and
    one that several models share (a common concept) is checked once per memo. One difference: a
    meta-model error in one identifiable no longer hides the constraint findings of the others.
    """
    try:
        from aas_test_engines import file as ate  # noqa: F401  (only: is it installed?)
    except ImportError:
        yield Problem(name, "", "catalogue/conformance-skipped",
                      "aas-test-engines is not installed, so its file check did not run: "
                      "pip install 'aas-test-engines==1.0.3'", severity="warning")
        return
    pieces = _pieces(jsonable)
    if pieces is None:
        findings = _ate_findings(jsonable)
    else:
        findings = []
        for key, index, item in pieces:
            digest = hashlib.sha256(key.encode() + orjson.dumps(item)).hexdigest()
            found = memo.get(digest)
            if found is None:
                found = memo[digest] = _ate_findings({key: [item]})
            findings.extend((where, _reindex(message, index), severity) for where, message, severity in found)
    for where, message, severity in dict.fromkeys(findings):
        yield Problem(name, where, "aas-test-engines", message, severity=severity)


def _pieces(jsonable: Any) -> list[tuple[str, int, Any]] | None:
    """The identifiables to check one by one, or None when the file is odd enough to check whole."""
    if not isinstance(jsonable, dict) or not set(jsonable) <= set(_IDENTIFIABLE_KEYS):
        return None
    if not all(isinstance(v, list) and v for v in jsonable.values()):
        return None  # an empty list is a finding of the whole file
    return [(key, i, item) for key in _IDENTIFIABLE_KEYS for i, item in enumerate(jsonable.get(key) or [])]


def _reindex(message: str, index: int) -> str:
    """A finding of a one-item environment, with the item's index in the whole file."""
    return _FIRST_ITEM.sub(lambda m: f"{m.group(1)}{index}", message, count=1) if index else message


def _ate_findings(jsonable: Any) -> list[Finding]:
    from aas_test_engines import file as ate
    from aas_test_engines.result import AasTestResult, Level

    def leaves(node: AasTestResult, trail: tuple[str, ...]) -> Iterator[tuple[AasTestResult, tuple[str, ...]]]:
        if not node.sub_results:
            yield node, trail
        for sub in node.sub_results:
            yield from leaves(sub, (*trail, node.message))

    return [(" / ".join(t for t in trail[-2:] if t), leaf.message.strip(),
             "error" if leaf.level.value >= Level.ERROR.value else "warning")
            for leaf, trail in leaves(ate.check_json_data(jsonable), ())
            if leaf.level.value >= Level.WARNING.value]


def _structure(folder: ModelFolder, jsonable: Any, metadata: Metadata | None, name: str) -> Iterator[Problem]:
    shells = jsonable.get("assetAdministrationShells") or []
    if len(shells) != 1:
        yield Problem(name, "assetAdministrationShells", "catalogue/not-template",
                      f"a reference model has exactly one (template) shell, this one has {len(shells)}")
        return
    shell = shells[0]
    where = describe(jsonable, ["assetAdministrationShells", 0])
    admin = shell.get("administration") or {}
    version = f"{admin.get('version')}.{admin.get('revision')}"
    if version != folder.version:
        yield Problem(name, f"{where} (administration)", "catalogue/version-mismatch",
                      f"administration says version {admin.get('version')!r} revision {admin.get('revision')!r} "
                      f"({version}) but the folder is {folder.version}: set version and revision to the folder's "
                      "major and minor (rebuild with twinedge models build)")
    try:
        kind, template_version = parse_template_shell_id(str(shell.get("id", "")))
        if (kind, template_version) != (folder.equipment_type, folder.version):
            yield Problem(name, where, "catalogue/version-mismatch",
                          f"the shell id names {kind} {template_version} but the folder is {folder.label}: "
                          "rebuild the model so that its ids follow the folder")
    except TemplateError as exc:
        yield Problem(name, where, "catalogue/not-template", str(exc))
    if metadata is not None and (metadata.version, metadata.equipment_type) != (folder.version,
                                                                                folder.equipment_type):
        yield Problem(str(folder.file(METADATA)), "version", "catalogue/version-mismatch",
                      f"metadata says {metadata.equipment_type} {metadata.version} but the folder is {folder.label}")
    if (shell.get("assetInformation") or {}).get("assetKind") != "Type":
        yield Problem(name, f"{where} (assetInformation.assetKind)", "catalogue/not-template",
                      "a reference model describes an equipment type: set assetKind to Type")
    for i, submodel in enumerate(jsonable.get("submodels") or []):
        if submodel.get("kind") != "Template":
            yield Problem(name, describe(jsonable, ["submodels", i]), "catalogue/not-template",
                          "submodels of a reference model are of kind Template")


def semantic_rules(jsonable: Any, name: str) -> Iterator[Problem]:
    """The rules on semanticIds, units, cardinality qualifiers and idShorts."""
    cds: dict[str, dict[str, Any]] = {}
    for cd in jsonable.get("conceptDescriptions") or []:
        content: dict[str, Any] = {}
        for spec in cd.get("embeddedDataSpecifications") or []:
            content = spec.get("dataSpecificationContent") or content
        cds[str(cd.get("id"))] = content
    for path, node in objects(jsonable):
        id_short = node.get("idShort")
        if isinstance(id_short, str) and not ID_SHORT_STYLE.match(id_short) and "modelType" in node:
            yield Problem(name, describe(jsonable, path), "catalogue/idshort-style",
                          f"idShort {id_short!r} is not UpperCamelCase (letters and digits, first one upper case): "
                          "e.g. " + "".join(w[:1].upper() + w[1:] for w in re.split(r"[_\W]+", id_short) if w),
                          severity="warning")
        for key in ("semanticId", "semanticIdListElement"):
            ref = node.get(key)
            if not isinstance(ref, dict):
                continue
            for k, item in enumerate(ref.get("keys") or []):
                value = str(item.get("value", ""))
                if re.search(r"\s", value):
                    yield Problem(name, describe(jsonable, [*path, key, "keys", k]),
                                  "catalogue/semantic-id-whitespace",
                                  f"{value!r} contains whitespace, so it matches no concept: remove it")
                elif k == 0 and value not in cds and not EXTERNAL_ID.match(value):
                    yield Problem(name, describe(jsonable, [*path, key]), "catalogue/semantic-id-unresolved",
                                  f"{value!r} is neither a concept description of this model nor an ECLASS/IEC CDD "
                                  "IRDI or admin-shell.io id: add a ConceptDescription with this id (a spec "
                                  "signal or property gets one automatically) or use a dictionary id")
        for q, qualifier in enumerate(node.get("qualifiers") or []):
            qtype = str(qualifier.get("type", ""))
            if qtype != maintenance.CARDINALITY_TYPE and CARDINALITY_LIKE.search(qtype):
                yield Problem(name, describe(jsonable, [*path, "qualifiers", q]), "catalogue/cardinality-spelling",
                              f"qualifier type {qtype!r}: write cardinality exactly as "
                              f"{maintenance.CARDINALITY_TYPE!r}")
            elif qtype == maintenance.CARDINALITY_TYPE and qualifier.get("value") not in maintenance.CARDINALITIES:
                yield Problem(name, describe(jsonable, [*path, "qualifiers", q]), "catalogue/cardinality-spelling",
                              f"cardinality {qualifier.get('value')!r} must be one of "
                              f"{', '.join(maintenance.CARDINALITIES)}")
        if node.get("modelType") in ("Property", "Range") and node.get("valueType") in NUMERIC_TYPES:
            yield from _unit(jsonable, path, node, cds, name)


def _unit(jsonable: Any, path: JsonPath, node: dict[str, Any], cds: dict[str, dict[str, Any]],
          name: str) -> Iterator[Problem]:
    keys = (node.get("semanticId") or {}).get("keys") or []
    concept = cds.get(str(keys[0].get("value"))) if keys else None
    if concept is None:
        return
    data_type = concept.get("dataType")
    if data_type is None:
        yield Problem(name, describe(jsonable, path), "catalogue/missing-data-type",
                      f"the concept {keys[0].get('value')!r} of this {node.get('valueType')} value has no IEC 61360 "
                      "dataType: give it REAL_MEASURE/INTEGER_MEASURE with a unit, or a *_COUNT type")
    elif data_type in MEASURE_TYPES and not (concept.get("unit") or concept.get("unitId")):
        yield Problem(name, describe(jsonable, path), "catalogue/missing-unit",
                      f"a measured value ({data_type}) without a unit: give its concept "
                      f"{keys[0].get('value')!r} a unit (spec: `unit:`), or make it a *_COUNT if it has none")


def _released(folder: ModelFolder, metadata: Metadata) -> Iterator[Problem]:
    file = str(folder.file(METADATA))
    if metadata.status in ("released", "deprecated") and metadata.released is None:
        yield Problem(file, "released", "catalogue/released-changed",
                      f"status {metadata.status} without a release record: release with `twinedge models release`, "
                      "which records the content hash")
    elif metadata.released is not None and content_hash(folder) != metadata.released.content_sha256:
        yield Problem(file, "released.content_sha256", "catalogue/released-changed",
                      f"{folder.label} was released on {metadata.released.date} and its content has changed since: "
                      "released versions are immutable. Undo the change (git checkout) and make a new version: "
                      f"twinedge models new {folder.equipment_type} --from {folder.path}")


def _generated(folder: ModelFolder, metadata: Metadata, data: bytes) -> Iterator[Problem]:
    if not folder.file(SPEC).is_file() and data != dump_model(orjson.loads(data)):
        yield Problem(str(folder.file(MODEL)), "", "catalogue/stale",
                      "model.json is not in canonical form (2-space indent, metamodel key order), so diffs get "
                      "noisy: run twinedge models build")
    try:
        expected = generated_files(folder, metadata)
    except AasError as exc:
        yield from getattr(exc, "problems", [Problem(str(folder.file(SPEC)), "", "catalogue/stale", str(exc))])
        return
    for name, content in expected.items():
        path = folder.file(name)
        if not path.is_file() or path.read_bytes() != content:
            source = "spec.yaml" if name == MODEL else "model.json and metadata.yaml"
            yield Problem(str(path), "", "catalogue/stale",
                          f"{name} is not what {source} generate{'s' if name == MODEL else ''}: run "
                          f"twinedge models build {folder.path}" + (" (and never edit it by hand)"
                                                                    if name == README else ""))


def _binding(folder: ModelFolder, jsonable: Any) -> Iterator[Problem]:
    path = folder.file(BINDING)
    if not path.is_file():
        yield Problem(str(path), "", "catalogue/binding",
                      "no example agent binding: add one (twinedge models new writes a starting point)",
                      severity="warning")
        return
    try:
        config = load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        yield Problem(str(path), "", "catalogue/binding", f"not readable YAML: {exc}")
        return
    signals = {str(s.get("idShort")) for sm in jsonable.get("submodels") or []
               if sm.get("idShort") == operational_data.ID_SHORT for s in children(sm)}
    assets = config.get("assets") if isinstance(config, dict) else None
    if not isinstance(assets, list) or not assets:
        yield Problem(str(path), "assets", "catalogue/binding", "an agent config needs assets with bindings")
        return
    for a, asset in enumerate(assets):
        for b, binding in enumerate((asset or {}).get("bindings") or []):
            element = (binding or {}).get("element")
            if element is not None and element not in signals:
                yield Problem(str(path), f"assets[{a}].bindings[{b}].element", "catalogue/binding",
                              f"{element!r} is not a data point of this model's OperationalData "
                              f"(one of {', '.join(sorted(signals))})")


def format_report(problems: Sequence[Problem], relative_to: Path | None = None) -> list[str]:
    """One line per problem; paths relative to `relative_to` when given (stable output for golden tests)."""
    lines = []
    for problem in problems:
        text = str(problem)
        if relative_to is not None:
            text = text.replace(str(relative_to.resolve()) + os.sep, "").replace(str(relative_to) + os.sep, "")
        lines.append(text)
    return lines

