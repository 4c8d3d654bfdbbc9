"""The reference-model catalogue: ``reference_models/<type>/<major>.<minor>/`` folders and the tools
that scaffold, build, lint, diff, package, instantiate, release and publish them.

One module per job: :mod:`.layout` (folders, metadata, hashes), :mod:`.maintenance` (the
MaintenanceHistory submodel), :mod:`.template` (spec -> template, template -> twin),
:mod:`.readme`, :mod:`.scaffold`, :mod:`.lint`, :mod:`.diff`, :mod:`.package`, :mod:`.release`,
:mod:`.publish` and :mod:`.cli` (the ``twinedge models`` group). The workflow is in
docs/reference-models.md.
"""
