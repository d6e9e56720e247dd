"""The figures of one benchmark row, from paired runs of our side and the reference side."""

from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Spread:
    """The median and range of one side's samples."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, samples: list[float]) -> Spread:
        """The spread of ``samples`` (at least one)."""
        return cls(statistics.median(samples), min(samples), max(samples))


def pairwise_ratio(ours: list[float], reference: list[float]) -> float:
    """The median of ``ours[i] / reference[i]``: each pair ran back to back, so a change of the
    machine's load between pairs cancels out (a ratio of medians would mix pairs)."""
    if len(ours) != len(reference) or not ours:
        raise ValueError("pairwise_ratio needs as many samples on each side, at least one")
    return statistics.median(o / r for o, r in zip(ours, reference))
