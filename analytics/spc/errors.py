"""Typed errors of the SPC package.

Every error a user can cause (bad data, unsuitable chart, malformed stored limits) is an
:class:`SpcError` (a ``ValueError``) whose message says what to do about it. The subclasses let a
caller tell the cases apart without parsing messages.
"""

from __future__ import annotations

__all__ = [
    "InsufficientDataError",
    "LimitsFormatError",
    "MissingValueError",
    "SpcError",
    "SpecificationError",
    "SubgroupSizeError",
    "ZeroSigmaError",
]


class SpcError(ValueError):
    """Base class of all SPC errors; the message says what to do."""


class MissingValueError(SpcError):
    """The data hold NaN (or infinite) values and ``nan_policy`` is ``"raise"``."""


class SubgroupSizeError(SpcError):
    """The subgroup size does not suit the chart (e.g. size 1 on an X-bar/R chart)."""


class InsufficientDataError(SpcError):
    """Too few subgroups or observations to estimate limits."""


class ZeroSigmaError(SpcError):
    """The estimated sigma is zero (constant data), so no limits can be drawn."""


class SpecificationError(SpcError):
    """Specification limits are missing or inconsistent."""


class LimitsFormatError(SpcError):
    """Stored limits (JSON/dict) are malformed or of an unknown schema."""
