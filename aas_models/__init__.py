"""The AAS vocabulary of TwinEdge: builders, identifiers, (de)serialisation and validation.

The in-memory model is aas-core3.0 (`aas_core3.types`), metamodel 3.0, which is what the
official conformance tool checks; see docs/aas-models.md for why.
"""
