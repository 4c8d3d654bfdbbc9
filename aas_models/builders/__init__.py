"""Submodel builders: typed input in, an Instance-kind aas-core Submodel out.

IDTA templates: :mod:`.nameplate` (Digital Nameplate 3.0), :mod:`.technical_data` (Technical Data 2.0),
:mod:`.time_series` (Time Series Data 1.1). TwinEdge's own: :mod:`.operational_data`,
:mod:`.condition_monitoring`. :mod:`.elements` holds the small constructors they share.

Nothing is re-exported here on purpose: :mod:`aas_models.concepts` imports :mod:`.elements`, and the
own-submodel builders import :mod:`aas_models.concepts`; importing them from this ``__init__`` would
make that a cycle.
"""
