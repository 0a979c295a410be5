"""Epoch numbers as people read them.

Lightning counts epochs from 0, and so do ``history.csv``'s ``epoch`` column
and ``qc.json``'s ``best_epoch`` (kept so for old bundles and resumes).
Everything shown to a person (console lines, progress bars, reports, the
model card) counts from 1: this is the one place that converts.
"""

from __future__ import annotations

from typing import Any


def shown_epoch(index: Any) -> int | None:
    """The epoch number shown to people (from 1) for a stored index (from 0).

    Parameters
    ----------
    index : int, float or None
        The stored, 0-based epoch (a ``history.csv`` row's ``epoch``, or
        ``qc.json``'s ``best_epoch``).

    Returns
    -------
    int or None
        ``index + 1``; None when there is no epoch.
    """
    if index is None or isinstance(index, bool):
        return None
    return int(index) + 1
