"""How many threads a fit runs on (torch's intra-op threads, OpenMP's, BLAS's): from its size and the free cores.

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

So a fit runs on one thread per :data:`WORK_PER_THREAD` elements its step touches, at least one and at
most torch's own default, and, where that is more than one, on no more than the cores that other
processes leave free (:func:`free_cores`: the cores this process may use, less the others' load).
A small fit always runs on one thread and reads no load: its numbers are the same run after run. A
large one's thread count, and so the last bits of its sums, can differ with the load; set
``OMP_NUM_THREADS`` for the same numbers on any machine.

The count covers the whole fit, its start included: torch's intra-op threads, and through
``threadpoolctl`` the BLAS of NumPy and SciPy (classical and pivot MDS, the start's L-BFGS-B) and
OpenMP. :func:`for_fit` gives every setting back when the fit ends (the estimator's fit in a
notebook, ``main`` of the CLI run in-process). A user's explicit choice is left alone: nothing
is changed when ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` is set (torch and OpenBLAS read them at
start-up), or when torch's thread count is neither its default nor the one this module set last
(``torch.set_num_threads`` or ``threadpool_limits`` was called by the user's code; a call made
before this module is first imported, by the CLI, reads as the default, which the rule then only
ever lowers).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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

_SINCE = (time.monotonic(), time.process_time())
"""Wall and CPU clocks when this module was imported: this process's own share of the load average."""

SAMPLES = 5
"""Reads of the runnable count (``/proc/loadavg``), 2 ms apart: the median is this moment's load."""


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


def cores() -> int:
    """CPUs this process may run on: its affinity mask, and a cgroup's CPU quota where one is set (containers)."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    try:  # cgroup v2: "max 100000" (no quota) or "200000 100000" (2 CPUs' worth)
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, count)


def _own_runnable() -> int:
    """Threads of this process that are runnable now (Linux; 1, the caller, elsewhere)."""
    running = 0
    try:
        for task in os.scandir("/proc/self/task"):
            try:
                stat = Path(task.path, "stat").read_text()
            except OSError:
                continue
            running += stat[stat.rindex(")") + 2] == "R"
    except OSError:
        return 1
    return max(1, running)


def _runnable_now() -> float | None:
    """Runnable threads of other processes at this moment: the median of :data:`SAMPLES` reads (Linux), else None."""
    counts = []
    for k in range(SAMPLES):
        try:
            total = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            return None
        counts.append(max(0, total - _own_runnable()))
        if k < SAMPLES - 1:
            time.sleep(0.002)
    return float(sorted(counts)[len(counts) // 2])


def _own_load() -> float:
    """The part of the 1-minute load average that is this process's: from its CPU time since this module's import."""
    wall, cpu = time.monotonic() - _SINCE[0], time.process_time() - _SINCE[1]
    if wall <= 0:
        return 0.0
    return min(1.0, cpu / wall) * (1.0 - math.exp(-wall / 60.0))


def others_load() -> float:
    """Cores' worth of other processes' work: the 1-minute load average or the runnable threads now, the larger.

    The average is taken less this process's own part (:func:`_own_load`); the threads of other
    processes runnable at this moment (:func:`_runnable_now`) show work that started too recently for
    the average, which takes a minute to rise.
    """
    try:
        average = max(0.0, os.getloadavg()[0] - _own_load())
    except (AttributeError, OSError):
        average = 0.0
    now = _runnable_now()
    return max(average, now or 0.0)


def free_cores() -> float:
    """The cores this process may use (:func:`cores`) less the others' load (:func:`others_load`), at least 0."""
    return max(0.0, cores() - others_load())


def threads_for(work: int, most: int | None = None, free: float | None = None) -> int:
    """Threads for a step of ``work`` elements: one per :data:`WORK_PER_THREAD`, from 1 to ``most`` (torch's default).

    Where that is more than one, at most the ``free`` cores (:func:`free_cores` when not given), rounded.
    """
    most = _DEFAULT if most is None else most
    wanted = max(1, min(most, work // WORK_PER_THREAD))
    if wanted == 1:
        return 1  # a small fit: one thread wins on any machine, and the load is not read
    free = free_cores() if free is None else free
    return max(1, min(wanted, int(free + 0.5)))


def user_set() -> bool:
    """Whether the user chose torch's threads: an environment variable, or ``torch.set_num_threads`` in their code."""
    if any(os.environ.get(name, "").strip() for name in USER_SETTINGS):
        return True
    current = torch.get_num_threads()
    return current != _DEFAULT and current not in _chosen


def use_for(work: int) -> int:
    """Set torch's, OpenMP's and BLAS's threads for a fit whose step touches ``work`` elements; returns the count.

    A user's own setting is kept (nothing is changed, and torch's count is returned). The settings
    stay as set: :func:`for_fit` or :func:`kept` give them back.
    """
    if user_set():
        return torch.get_num_threads()
    threads = threads_for(work)
    _limit_native(threads)
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    log.debug(f"threads: {threads} for {work} elements a step")
    _chosen[:] = [threads]
    return threads


def use_for_fit(table: DistanceTable, solver: object, maps: int = 1) -> int:
    """:func:`use_for` the work of one step of ``solver`` (pair batches' ``batch_size``, else the full batch)."""
    return use_for(fit_work(table, getattr(solver, "batch_size", None), maps))


_controllers: list[Any] = []
"""threadpoolctl's controller of the loaded BLAS and OpenMP libraries, made once (finding them takes milliseconds)."""


def _controller() -> Any:
    """The native thread pools' controller (None without threadpoolctl), SciPy's BLAS loaded first."""
    if not _controllers:
        try:
            import scipy.linalg  # noqa: F401  (SciPy's own OpenBLAS: the start's eigenvectors and L-BFGS-B)
            from threadpoolctl import ThreadpoolController
        except ImportError:  # a dependency; without it the BLAS keeps its own count
            return None
        _controllers.append(ThreadpoolController())
    return _controllers[0]


def _limit_native(threads: int) -> None:
    """NumPy's and SciPy's BLAS, and OpenMP, on ``threads`` (threadpoolctl; nothing where it cannot load)."""
    controller = _controller()
    if controller is not None:
        controller.limit(limits=threads)


@contextlib.contextmanager
def kept() -> Iterator[None]:
    """Give torch's thread count and the BLAS and OpenMP limits back as they were, whatever is set inside."""
    torch_threads = torch.get_num_threads()
    controller = _controller()
    native = [] if controller is None else [(lib, lib.num_threads) for lib in controller.lib_controllers]
    try:
        yield
    finally:
        if torch.get_num_threads() != torch_threads:
            torch.set_num_threads(torch_threads)
        for lib, count in native:
            if lib.num_threads != count:
                lib.set_num_threads(count)


@contextlib.contextmanager
def for_fit(table: DistanceTable, solver: object, maps: int = 1) -> Iterator[int]:
    """Run a fit on the threads its work and the free cores call for (:func:`use_for_fit`), then give all back."""
    with kept():
        yield use_for_fit(table, solver, maps)
