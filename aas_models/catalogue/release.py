"""``twinedge models release PATH [--to STATUS]``: move a model version through its review stages.

    draft -> in-review -> approved -> released -> deprecated
               |  ^          |
               v  |          v
             draft       in-review        (changes requested)

Without ``--to`` the version moves one stage forward (draft -> in-review -> approved -> released);
deprecating is always explicit. Gates: leaving draft needs a lint without errors; approved needs at
least one reviewer in metadata.yaml who is not an owner; released needs a changelog entry for the
version and records the release date and the content hash, which makes the version immutable: the
lint and every later ``release`` or ``build`` refuse a changed released version, and a fix becomes a
new version (``twinedge models new TYPE --from PATH``).
"""

from __future__ import annotations

import datetime as dt

from aas_models.catalogue.layout import (
    METADATA,
    README,
    TRANSITIONS,
    CatalogueError,
    Metadata,
    ModelFolder,
    ReleaseRecord,
    content_hash,
    dump_metadata,
    load_metadata,
)
from aas_models.catalogue.lint import LintOptions, lint_folder
from aas_models.catalogue.scaffold import generated_files
from aas_models.errors import Problem

FORWARD = {"draft": "in-review", "in-review": "approved", "approved": "released"}


def _refuse(folder: ModelFolder, field: str, message: str, rule: str = "catalogue/release") -> CatalogueError:
    return CatalogueError([Problem(str(folder.file(METADATA)), field, rule, message)])


def release(folder: ModelFolder, to: str | None = None, *, today: dt.date | None = None,
            options: LintOptions | None = None) -> Metadata:
    """Move `folder` to status `to` (default: the next stage); writes metadata.yaml and README.md."""
    metadata = load_metadata(folder)
    if metadata.released is not None and content_hash(folder) != metadata.released.content_sha256:
        raise _refuse(folder, "released.content_sha256",
                      f"{folder.label} was released on {metadata.released.date} and has changed since: released "
                      f"versions are immutable. Undo the change and make a new version: twinedge models new "
                      f"{folder.equipment_type} --from {folder.path}", "catalogue/released-changed")
    target = to or FORWARD.get(metadata.status)
    if target is None:
        raise _refuse(folder, "status", f"{folder.label} is {metadata.status}; the only step left is explicit: "
                                        "--to deprecated" if metadata.status == "released"
                      else f"{folder.label} is {metadata.status}: nothing follows")
    if target not in TRANSITIONS[metadata.status]:
        allowed = ", ".join(TRANSITIONS[metadata.status]) or "none"
        raise _refuse(folder, "status", f"cannot go from {metadata.status} to {target} (from {metadata.status}: "
                                        f"{allowed})")
    _write_readme(folder, metadata)  # metadata edits (reviewers, changelog) show in the README
    if target in ("in-review", "approved", "released"):
        errors = [p for p in lint_folder(folder, options or LintOptions()).problems if p.severity == "error"]
        if errors:
            raise CatalogueError([*errors, Problem(str(folder.path), "", "catalogue/release",
                                                   f"fix the {len(errors)} lint errors above before {target}")])
    if target == "approved" and not [r for r in metadata.reviewers if r not in metadata.owners]:
        raise _refuse(folder, "reviewers", "approval needs at least one reviewer who is not an owner: add who "
                                           "reviewed it to reviewers in metadata.yaml")
    update: dict[str, object] = {"status": target}
    if target == "released":
        if not any(entry.version == metadata.version for entry in metadata.changelog):
            raise _refuse(folder, "changelog", f"add a changelog entry for {metadata.version} before releasing")
        update["released"] = ReleaseRecord(date=today or dt.date.today(), content_sha256=content_hash(folder))
    new = metadata.model_copy(update=update)
    folder.file(METADATA).write_text(dump_metadata(new), encoding="utf-8")
    _write_readme(folder, new)
    return new


def _write_readme(folder: ModelFolder, metadata: Metadata) -> None:
    """README.md is generated (and not part of the release hash): keep it in step with metadata.yaml."""
    data = generated_files(folder, metadata)[README]
    if not folder.file(README).is_file() or folder.file(README).read_bytes() != data:
        folder.file(README).write_bytes(data)
