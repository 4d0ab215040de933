"""What every decoder returns, and the dead letters of a batch's rejected records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from pipeline.data.batches import InstanceBatch, SourceBatch
from pipeline.data.dead_letters import DeadLetter, Rejection, utc_now


@dataclass(frozen=True)
class Decoded:
    """Instances ready for the model (several batches when their shapes differ), and dead letters; with a UDF,
    the records it dropped on purpose and those it added by splitting one in several (counted, so that every
    record read is accounted for)."""

    instances: list[InstanceBatch] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    dropped: int = 0
    added: int = 0


class Decoder(Protocol):
    def decode(self, batch: Any) -> Decoded:
        """Instances and dead letters of a batch of the kind this decoder's source makes."""
        ...


def dead_letters(batch: SourceBatch, rejections: list[tuple[int, Rejection]]) -> list[DeadLetter]:
    """One dead letter per rejected record of `batch`, all stamped with the same time."""
    if not rejections:
        return []
    timestamp = utc_now()
    return [batch.dead_letter(position, rejection, timestamp=timestamp) for position, rejection in rejections]
