"""Value-only writes of Properties without re-serialising the submodel.

A value PATCH changes one string in a stored submodel of many kilobytes; parsing and serialising the
whole document for it costs most of the write. A :class:`Skeleton` is the stored JSON cut at every
Property's value: the pieces between the values, and the values. A write checks the new value with the
full path's check (the same errors) on a copy of what that check reads of the element, puts its JSON
string in the slot, and joins: the result is byte for byte what the full path (parse, change,
`orjson.dumps`) writes, because the stored bytes are that serialisation (checked when the skeleton is
made).

Anything else (other element kinds, a value removed, a string that needs escapes, stored bytes that
are not the skeleton's, many values in a small submodel, where the full path is as fast) returns
None and the caller takes the full path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from twin_server import values
from twin_server.idshort_path import Token, walk
from twin_server.storage.base import Index

#: Submodels whose skeleton is kept (the most recently written ones).
_KEPT = 64
#: Splicing costs about as much per value as parsing and serialising this many bytes of JSON: for a write of
#: more values than that in a small submodel, the full path is as fast.
_BYTES_PER_VALUE = 1500
_SLOT = re.compile(rb'"\\u0000twinedge-slot-(\d+)\\u0000"')


@dataclass(slots=True)
class Skeleton:
    """One stored version of a submodel, cut at its Properties' values."""

    #: The stored bytes this skeleton joins to.
    body: bytes
    index: Index
    #: Literal JSON between the values: len(pieces) == len(strings) + 1.
    pieces: list[bytes]
    #: Each slot's value as a JSON string (with quotes), in document order.
    strings: list[bytes]
    #: idShortPath (as tokens) -> slot
    slots: dict[tuple[Token, ...], int]
    #: Each slot's Property as far as checking a new value reads it (modelType, idShort, valueType).
    elements: list[dict[str, Any]]

    def join(self) -> bytes:
        out = [self.pieces[0]]
        for string, piece in zip(self.strings, self.pieces[1:], strict=True):
            out += (string, piece)
        return b"".join(out)


def make_skeleton(body: bytes, doc: dict[str, Any], index: Index) -> Skeleton | None:
    """The skeleton of `body` (`doc` is its parse, which is changed here); None if it cannot be made."""
    slots: dict[tuple[Token, ...], int] = {}
    ambiguous: set[tuple[Token, ...]] = set()
    strings: list[bytes] = []
    elements: list[dict[str, Any]] = []
    for tokens, element in walk(doc, []):
        key = tuple(tokens)
        if key in slots or key in ambiguous:  # a repeated idShort: leave both to the full path
            ambiguous.add(key)
            slots.pop(key, None)
            continue
        value = element.get("value")
        if element.get("modelType") != "Property" or not isinstance(value, str):
            continue
        string = orjson.dumps(value)
        slot = len(strings)
        slots[key] = slot
        strings.append(string)
        elements.append({k: element[k] for k in ("modelType", "idShort", "valueType") if k in element})
        element["value"] = f"\x00twinedge-slot-{slot}\x00"
    parts = _SLOT.split(orjson.dumps(doc))
    if len(parts) != 2 * len(strings) + 1 or [int(n) for n in parts[1::2]] != list(range(len(strings))):
        return None
    skeleton = Skeleton(body, index, parts[0::2], strings, slots, elements)
    return skeleton if skeleton.join() == body else None


class Splicer:
    """Skeletons of recently written submodels. Use from one thread at a time (the store's writer)."""

    def __init__(self, index_of: Callable[[dict[str, Any]], Index], bytes_per_value: int = _BYTES_PER_VALUE) -> None:
        """`index_of` gives a submodel's index fields (they do not depend on Property values); writes of more
        values than the stored document has `bytes_per_value` bytes take the full path."""
        self._index_of = index_of
        self._bytes_per_value = bytes_per_value
        self._skeletons: dict[str, Skeleton | None] = {}
        #: Bytes for which no skeleton could be made (not the canonical serialisation): not tried again.
        self._refused: dict[str, bytes] = {}

    def splice(self, ident: str, old: bytes, updates: Sequence[tuple[tuple[Token, ...], str, Any]], *,
               element_form: bool) -> tuple[bytes, Index] | None:
        """The new stored bytes and index after setting each (idShortPath tokens, where, value) of `updates` on
        the Property there, or None when the full path must do it. Each value is checked as the full path
        checks it, with the same errors (ApiError; nothing is changed then): by
        :func:`values.apply_element_value` (`element_form`: an element's `$value`, also ``{idShort: value}``)
        or else by :func:`values.apply_value` (the members of a submodel's `$value`)."""
        if len(updates) * self._bytes_per_value > len(old):
            return None
        skeleton = self._skeleton(ident, old)
        if skeleton is None:
            return None
        apply = values.apply_element_value if element_form else values.apply_value
        new_strings = list(skeleton.strings)
        for tokens, where, value in updates:
            slot = skeleton.slots.get(tokens)
            if slot is None:
                return None
            element = dict(skeleton.elements[slot])
            apply(element, value, where)
            text = element.get("value")
            if not isinstance(text, str):  # the value removed: the full path does that
                return None
            string = orjson.dumps(text)
            if b"\\" in string or string.count(b'"') != 2:  # escapes: a slot must stay one plain string
                return None
            new_strings[slot] = string
        skeleton.strings = new_strings
        skeleton.body = skeleton.join()
        return skeleton.body, skeleton.index

    def _skeleton(self, ident: str, old: bytes) -> Skeleton | None:
        skeleton = self._skeletons.get(ident)
        if skeleton is not None and skeleton.body == old:
            return skeleton
        if self._refused.get(ident) == old:
            return None
        doc = orjson.loads(old)
        made = make_skeleton(old, doc, self._index_of(doc)) if isinstance(doc, dict) else None
        self._skeletons.pop(ident, None)
        self._refused.pop(ident, None)
        if made is None:
            if len(self._refused) >= _KEPT:
                del self._refused[next(iter(self._refused))]
            self._refused[ident] = old
            return None
        if len(self._skeletons) >= _KEPT:
            del self._skeletons[next(iter(self._skeletons))]
        self._skeletons[ident] = made
        return made
