"""The storage interface: identifiables kept as validated JSON bytes, plus files.

Backends store what the repository layer hands them and never parse AAS themselves: the
repository validates on write and derives the index fields (`Index`) used by the list filters.
Pagination is by a monotonically increasing sequence number per stored identifiable, so pages
are deterministic, a page of 100 costs the same anywhere in the list, and items present for the
whole walk appear exactly once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    SHELL = "shells"
    SUBMODEL = "submodels"
    CONCEPT_DESCRIPTION = "concept-descriptions"
    SHELL_DESCRIPTOR = "shell-descriptors"
    SUBMODEL_DESCRIPTOR = "submodel-descriptors"
    PACKAGE = "packages"


@dataclass(frozen=True)
class Index:
    """What list filters match on; computed from the document by the repository."""

    id_short: str | None = None
    semantic_id: str | None = None
    #: (name, value) pairs; for shells the globalAssetId is ("globalAssetId", value).
    asset_ids: tuple[tuple[str, str], ...] = ()
    #: Extra filter keys (e.g. concept descriptions' isCaseOf, dataSpecificationRef).
    refs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Filter:
    id_short: str | None = None
    semantic_id: str | None = None
    #: Every pair must be present on the item.
    asset_ids: tuple[tuple[str, str], ...] = ()
    refs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Page:
    items: list[bytes]
    #: Opaque position after the last item, None on the last page.
    cursor: str | None = None


@dataclass(frozen=True)
class StoredFile:
    content_type: str
    file_name: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class FileChange:
    """A file to store (`file`) or remove (None) in the transaction of a document change: an upload then
    never leaves a document naming a file that is not stored, or a stored file the document does not name."""

    name: str
    file: StoredFile | None = None


#: File name under which a shell's thumbnail is stored.
THUMBNAIL = "thumbnail"


class StorageError(Exception):
    """A storage problem that is not the client's fault (5xx)."""


class Conflict(Exception):
    """An identifiable with that id exists already."""


class NotFound(Exception):
    """No identifiable with that id."""


class NoFile(Exception):
    """The file a FileChange removes is not stored."""


#: A change to one stored document: gets its current bytes, returns (new bytes, new index)
#: or raises to leave it unchanged.
Change = Callable[[bytes], tuple[bytes, Index]]


class Storage(ABC):
    """One backend. All methods are atomic: a call that raises has changed nothing."""

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Connect and create the schema if needed."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    @abstractmethod
    async def get(self, kind: Kind, ident: str) -> bytes | None: ...

    @abstractmethod
    async def page(self, kind: Kind, flt: Filter, limit: int, cursor: str | None) -> Page:
        """Items in storage order after `cursor`; raises ValueError for a cursor it never issued."""

    @abstractmethod
    async def create(self, kind: Kind, ident: str, body: bytes, index: Index) -> None:
        """Raises Conflict if `ident` exists."""

    @abstractmethod
    async def update(self, kind: Kind, ident: str, change: Change, file: FileChange | None = None) -> bytes:
        """Apply `change` to the stored document atomically (no lost update between replicas), and store or
        remove `file` under it in the same transaction.

        Raises NotFound, then NoFile (a file to remove is not there); exceptions from `change` propagate and
        nothing is written.
        """

    @abstractmethod
    async def delete(self, kind: Kind, ident: str) -> None:
        """Raises NotFound. Also deletes the files stored under this identifiable."""

    @abstractmethod
    async def count(self, kind: Kind) -> int: ...

    # Files: thumbnails and File-element attachments, keyed by (kind, identifiable id, name).
    @abstractmethod
    async def get_file(self, kind: Kind, ident: str, name: str) -> StoredFile | None: ...

    @abstractmethod
    async def put_file(self, kind: Kind, ident: str, name: str, file: StoredFile) -> None: ...

    @abstractmethod
    async def delete_file(self, kind: Kind, ident: str, name: str) -> bool: ...
