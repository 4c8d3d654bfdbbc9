"""The sink interface: deliver a batch of samples to one target, all or nothing.

The buffer hands each sink the samples after its own position and advances that position only
when `write` returns, so delivery is at least once; a sink makes re-delivered samples harmless
(its writes are idempotent per (series, time)). A sink raises SinkError when the target is down;
the runtime backs off and retries the same batch, and nothing is lost meanwhile.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from aas_models.timeseries.base import Sample


class SinkError(Exception):
    """The target could not take the batch now (down, refused, timed out); retry later."""


class SinkRejected(SinkError):
    """The target refused the batch for a reason a retry will not fix (e.g. 400): the runtime
    counts and logs it and moves on, so one bad batch cannot block a sink forever."""


@dataclass
class SinkStats:
    written: int = 0
    batches: int = 0
    errors: int = 0
    rejected: int = 0
    reconnects: int = 0
    last_error: str = ""


class Sink(ABC):
    def __init__(self, name: str) -> None:
        self.name = name
        self.stats = SinkStats()

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Prepare (connect lazily is fine: `write` must work after an outage without a new open)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Flush and release."""

    @abstractmethod
    async def write(self, samples: Sequence[Sample]) -> None:
        """Deliver all of `samples` or raise SinkError."""
