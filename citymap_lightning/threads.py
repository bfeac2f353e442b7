"""How many intra-op threads torch uses for a fit: chosen from the work of one step, once, when the fit starts.

A step of pair batches touches a few tens of thousands of pairs and every place once: well under a
millisecond of arithmetic a thread. Split over threads, each operation waits for the slowest one at
its end, and on a machine whose cores other processes use that wait is a scheduler's time slice.
Measured on the 2-core development machine (``benchmarks/threads.py``: 1 thread against 2, 30 steps,
the figures in ``benchmarks/results/threads.json``):

- at a quiet moment (load average 1.7, median of 20 steps, not saved), two threads gained at most
  1.3x below a million elements a step (200,000 places, 16,384 pairs: 1.15 against 0.89 ms) and
  2.8x at a million places (7.5 against 2.6 ms);
- beside one busy process, two threads lost at every size measured but one (equal), 1.7x to 13x in the mean (200,000
  places, 16,384 pairs: 1.25 against 9.4 ms; the full batch of 1,000 places: 6.2 against 11.8 ms);
- beside two, or beside the other users' work, up to 290x (the 36-city full batch: 0.05 against 15 ms).

So a fit gets one thread per :data:`WORK_PER_THREAD` elements its step touches, at least one and at
most torch's own default. The rule leaves a user's explicit choice alone: nothing is changed when
``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` is set (torch reads them at start-up), or when the
thread count is neither torch's default nor the one this module set last (``torch.set_num_threads``
was called by the user's code; a call made before this module is first imported, by the CLI,
reads as the default, which the rule then only ever lowers). The choice depends on the problem
alone, never on the machine's load at the moment, so the same command gives the same numbers run
after run.
"""

from __future__ import annotations

import logging
import os

import torch

from citymap_lightning.tables import DistanceTable, PairTable

log = logging.getLogger("citymap_lightning")

WORK_PER_THREAD = 1_000_000
"""Elements a step touches (pairs of every restart, and places) per intra-op thread."""

USER_SETTINGS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
"""Environment variables by which a user sets torch's threads: when either is set, it is left as it is."""

_DEFAULT = torch.get_num_threads()
"""Torch's intra-op threads when this module was first imported (its default unless set before)."""

_chosen: list[int] = []
"""The thread count this module set last (empty before the first fit)."""


def step_work(places: int, pairs: int, restarts: int = 1) -> int:
    """Elements one step touches: ``pairs`` pairs (a batch's or every known pair's) in each restart, and the places.

    For a full matrix, ``pairs`` counts the matrix's entries (``n * n``), as the step computes them.
    """
    return max(1, restarts) * max(0, pairs) + max(0, places)


def fit_work(table: DistanceTable, batch_size: int | None, restarts: int = 1) -> int:
    """Elements a fit's step touches: a pair batch and every place, or the full batch (each restart's).

    ``batch_size`` is the pair batches' (None for one full batch). A full batch of a matrix or of
    places computes the whole ``n x n`` matrix; one of a pair list, the known pairs.
    """
    if batch_size is not None:
        return step_work(table.n, min(batch_size, table.n_known_pairs))
    pairs = table.n_known_pairs if isinstance(table, PairTable) else table.n * table.n
    return step_work(table.n, pairs, restarts)


def use_for_fit(table: DistanceTable, solver: object, maps: int = 1) -> int:
    """:func:`use_for` the work of one step of ``solver`` (pair batches' ``batch_size``, else the full batch)."""
    return use_for(fit_work(table, getattr(solver, "batch_size", None), maps))


def threads_for(work: int, most: int | None = None) -> int:
    """One thread per :data:`WORK_PER_THREAD` elements of a step's ``work``, from 1 to ``most`` (torch's default)."""
    most = _DEFAULT if most is None else most
    return max(1, min(most, work // WORK_PER_THREAD))


def user_set() -> bool:
    """Whether the user chose torch's threads: an environment variable, or ``torch.set_num_threads`` in their code."""
    if any(os.environ.get(name, "").strip() for name in USER_SETTINGS):
        return True
    current = torch.get_num_threads()
    return current != _DEFAULT and current not in _chosen


def use_for(work: int) -> int:
    """Set torch's intra-op threads for a fit whose step touches ``work`` elements; returns the threads it runs on.

    Called once where a fit starts (the CLI's ``before_fit``). A user's own setting is kept.
    """
    if user_set():
        return torch.get_num_threads()
    threads = threads_for(work)
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
        log.debug(f"torch intra-op threads: {threads} for {work} elements a step")
    _chosen[:] = [threads]
    return threads
