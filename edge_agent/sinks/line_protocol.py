"""InfluxDB line protocol for samples: one encoder shared by the InfluxDB 1.x and 2.x/3.x sinks.

Schema (one point per sample)::

    {measurement},path={idShortPath},submodel_id={submodel id} {field}={value},quality="{quality}" {ns}

* measurement: configurable, default ``twinedge``.
* tags ``path`` (the element's idShortPath) and ``submodel_id`` (the submodel's id, the IRI, not base64url),
  sorted by key as InfluxDB prefers. Together with the measurement they name the series.
* exactly one value field, named after the value's type, and the string field ``quality``
  (``good``, ``uncertain``, ``bad``):

  ==================  ===========  =====================================================
  Python value        field        line protocol type
  ==================  ===========  =====================================================
  int, float          ``value``    float (ints too: ``7`` is written ``7.0``)
  bool                ``value_bool``  boolean
  str                 ``value_str``   string
  None, NaN, ±inf     (none)       only ``quality`` is written for that time
  ==================  ===========  =====================================================

  Why not one ``value`` field of changing type: InfluxDB fixes a field's type per *measurement* and shard,
  not per series (checked on 1.6.7: after one series wrote a float ``value``, another series writing a
  string ``value`` gets ``400 field type conflict``), so a single string-valued element would make every
  numeric write in the same shard fail. Numbers are always floats for the same reason (an int written as
  ``7i`` conflicts with ``7.0``); integers above 2**53 lose precision.
* timestamp: the sample's source time in nanoseconds since the epoch (write with ``precision=ns``). The
  point's identity is (measurement, tags, time), so writing the same sample again overwrites it: re-sent
  batches never duplicate points. A naive datetime is taken as UTC.

Escaping follows the line protocol: in the measurement ``,`` and space; in tag keys, tag values and field
keys ``,``, ``=`` and space; in string field values ``"`` and ``\\``. Some strings cannot be carried at
all: a tag value or measurement with a line break, an empty tag value, or a backslash that ends a tag
value or precedes ``,``/``=``/space/backslash (InfluxDB 1.x keeps ``\\\\`` as two characters while 2.x
reads it as one, and a trailing ``\\`` swallows the separator). :func:`encode_samples` skips such samples
and reports each in its result, so one odd id cannot block a whole batch; :func:`encode_sample` raises
:class:`LineProtocolError` for them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aas_models.timeseries.base import Quality, Sample

__all__ = [
    "BOOL_FIELD",
    "NUMBER_FIELD",
    "QUALITY_FIELD",
    "STRING_FIELD",
    "Encoded",
    "LineProtocolError",
    "check_measurement",
    "encode_sample",
    "encode_samples",
    "escape_field_key",
    "escape_measurement",
    "escape_string",
    "escape_tag",
    "timestamp_ns",
]

NUMBER_FIELD = "value"
BOOL_FIELD = "value_bool"
STRING_FIELD = "value_str"
QUALITY_FIELD = "quality"

#: InfluxDB's time range: int64 nanoseconds minus the two values it reserves.
MIN_NS = -9_223_372_036_854_775_806
MAX_NS = 9_223_372_036_854_775_806

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LINE_BREAKS = ("\n", "\r")


class LineProtocolError(ValueError):
    """A value that line protocol cannot carry; the message names it and says why."""


def _check_backslashes(text: str, what: str) -> None:
    i = text.find("\\")
    while i >= 0:
        nxt = text[i + 1:i + 2]
        if nxt in ("", ",", "=", " ", "\\"):
            raise LineProtocolError(f"{what} {text!r} has a backslash before {nxt!r} or at its end, which "
                                    "InfluxDB line protocol cannot carry unambiguously")
        i = text.find("\\", i + 1)


def _check_plain(text: str, what: str) -> None:
    if not text:
        raise LineProtocolError(f"{what} is empty; InfluxDB drops empty tag values")
    if any(c in text for c in _LINE_BREAKS):
        raise LineProtocolError(f"{what} {text!r} contains a line break, which line protocol cannot carry")
    if "\\" in text:
        _check_backslashes(text, what)


def escape_measurement(name: str) -> str:
    """The measurement as line protocol writes it (raises LineProtocolError if impossible)."""
    check_measurement(name)
    return name.replace(",", "\\,").replace(" ", "\\ ")


def check_measurement(name: str) -> str:
    """``name`` if it can be a measurement; raises LineProtocolError otherwise (for config validation)."""
    _check_plain(name, "measurement")
    if name.startswith("#"):
        raise LineProtocolError(f"measurement {name!r} starts with '#', which makes the line a comment")
    return name


def escape_tag(text: str, what: str = "tag value") -> str:
    """A tag key or value escaped (``,`` ``=`` space); raises LineProtocolError if it cannot be carried."""
    _check_plain(text, what)
    if "," in text or "=" in text or " " in text:
        text = text.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")
    return text


def escape_field_key(key: str) -> str:
    return escape_tag(key, "field key")


def escape_string(text: str) -> str:
    """A string field value, quoted and escaped (``"`` and ``\\``); line breaks are allowed inside."""
    if "\\" in text or '"' in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text + '"'


def timestamp_ns(time: datetime) -> int:
    """Nanoseconds since the epoch, exactly (no float rounding); naive datetimes are UTC."""
    if time.tzinfo is None:
        time = time.replace(tzinfo=UTC)
    delta = time - _EPOCH
    ns = ((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds) * 1_000
    if not MIN_NS <= ns <= MAX_NS:
        raise LineProtocolError(f"time {time.isoformat()} is outside InfluxDB's range (years 1677-2262)")
    return ns


_QUALITY = {q.value: f'{QUALITY_FIELD}="{q.value}"' for q in Quality}


def _value_field(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):  # before int: bool is an int
        return f"{BOOL_FIELD}={'true' if value else 'false'}"
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            raise LineProtocolError(f"integer {value} is too large for a float field") from None
        if not math.isfinite(number):
            return None
        return f"{NUMBER_FIELD}={number!r}"
    if isinstance(value, str):
        return f"{STRING_FIELD}={escape_string(value)}"
    raise LineProtocolError(f"value {value!r} of type {type(value).__name__} is not a number, bool or string")


@functools.lru_cache(maxsize=65_536)
def _tags(submodel_id: str, path: str) -> str:
    return (f",path={escape_tag(path, 'idShortPath (tag path)')}"
            f",submodel_id={escape_tag(submodel_id, 'submodel id (tag submodel_id)')}")


def encode_sample(sample: Sample, measurement: str) -> str:
    """One line (no trailing newline). ``measurement`` is already escaped (see :func:`escape_measurement`)."""
    key = sample.key
    tags = _tags(key.submodel_id, key.path)
    quality = _QUALITY.get(str(sample.quality))
    if quality is None:
        raise LineProtocolError(f"quality {sample.quality!r} is not good, uncertain or bad")
    value = _value_field(sample.value)
    fields = quality if value is None else f"{value},{quality}"
    return f"{measurement}{tags} {fields} {timestamp_ns(sample.time)}"


@dataclass
class Encoded:
    """The body to send (lines joined by ``\\n``), how many points it holds, and the samples left out."""

    body: bytes
    points: int
    skipped: list[tuple[Sample, str]] = field(default_factory=list)


def encode_samples(samples: Iterable[Sample], measurement: str) -> Encoded:
    """Encode a batch; samples line protocol cannot carry are skipped and listed with the reason.

    ``measurement`` is the plain name; it is escaped here.
    """
    meas = escape_measurement(measurement)
    lines: list[str] = []
    skipped: list[tuple[Sample, str]] = []
    for sample in samples:
        try:
            lines.append(encode_sample(sample, meas))
        except LineProtocolError as exc:
            skipped.append((sample, str(exc)))
    return Encoded("\n".join(lines).encode("utf-8"), len(lines), skipped)
