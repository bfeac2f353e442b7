"""The thread policy: threads chosen from a step's work and the free cores, a user's own choice kept, all given back."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import EUROPE, fit_cli
from threadpoolctl import threadpool_info, threadpool_limits

from citymap_lightning import gazetteer, output, starts, threads
from citymap_lightning import geometry as geo
from citymap_lightning.tables import PairTable, PlacesTable

BIG = 100 * threads.WORK_PER_THREAD
"""A step's work that would take every thread of a 4-thread default."""


@pytest.fixture(autouse=True)
def _threads_restored(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts as a fresh process with 4 default threads, no user setting and a quiet 4-core machine."""
    saved = torch.get_num_threads()
    for name in threads.USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(threads, "_DEFAULT", 4)
    monkeypatch.setattr(threads, "_chosen", [])
    monkeypatch.setattr(threads, "free_cores", lambda: 4.0)
    torch.set_num_threads(4)
    yield
    torch.set_num_threads(saved)


def blas_threads() -> list[int]:
    """The thread counts of the loaded BLAS libraries (NumPy's and SciPy's OpenBLAS)."""
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


# ---- the decision ------------------------------------------------------------------------------------------------


def test_threads_grow_with_the_work_of_a_step_up_to_the_default() -> None:
    per = threads.WORK_PER_THREAD
    assert threads.threads_for(0) == 1
    assert threads.threads_for(per - 1) == 1
    assert threads.threads_for(2 * per) == 2
    assert threads.threads_for(3 * per + 5) == 3
    assert threads.threads_for(BIG) == 4
    assert threads.threads_for(BIG, most=2) == 2


def test_a_small_fit_takes_one_thread_without_reading_the_load(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_load() -> float:
        raise AssertionError("the load was read for a small fit")

    monkeypatch.setattr(threads, "free_cores", no_load)
    assert threads.threads_for(36 * 36 + 36) == 1
    assert threads.threads_for(500 * 500 + 500) == 1  # the estimator's 500 places


@pytest.mark.parametrize(
    ("free", "expected"),
    [(4.0, 4), (3.6, 4), (2.4, 2), (1.0, 1), (0.6, 1), (0.0, 1)],
)  # fmt: skip
def test_a_large_fit_takes_the_free_cores(free: float, expected: int) -> None:
    assert threads.threads_for(BIG, free=free) == expected
    assert threads.threads_for(2 * threads.WORK_PER_THREAD, free=free) == min(2, expected)


def test_the_free_cores_are_the_cores_less_the_others_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the real free_cores, on a faked machine
    monkeypatch.setattr(threads, "_DEFAULT", 4)
    monkeypatch.setattr(threads, "_chosen", [])
    monkeypatch.setattr(threads, "cores", lambda: 2)
    monkeypatch.setattr(threads, "others_load", lambda: 2.0)  # two busy processes on 2 cores
    assert threads.free_cores() == 0.0
    assert threads.threads_for(BIG) == 1
    monkeypatch.setattr(threads, "others_load", lambda: 0.2)  # a quiet machine
    assert threads.free_cores() == pytest.approx(1.8)
    assert threads.threads_for(BIG) == 2
    monkeypatch.setattr(threads, "others_load", lambda: 1.0)  # one busy process
    assert threads.threads_for(BIG) == 1


def test_the_others_load_is_the_average_or_this_moment_whichever_is_more(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "_own_load", lambda: 0.0)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (2.3, 1.0, 0.5))
    monkeypatch.setattr(threads, "_runnable_now", lambda: 0.0)
    assert threads.others_load() == pytest.approx(2.3)  # busy for a minute, idle this instant
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (0.1, 0.0, 0.0))
    monkeypatch.setattr(threads, "_runnable_now", lambda: 2.0)
    assert threads.others_load() == 2.0  # two busy processes started a moment ago: the average has not seen them
    monkeypatch.setattr(threads, "_runnable_now", lambda: None)  # no /proc: the average alone
    assert threads.others_load() == pytest.approx(0.1)
    monkeypatch.setattr(threads, "_own_load", lambda: 0.8)  # this process's own part is not another's
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (1.0, 1.0, 1.0))
    assert threads.others_load() == pytest.approx(0.2)


def test_this_process_s_own_share_of_the_average_grows_with_its_busy_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "_SINCE", (0.0, 0.0))
    monkeypatch.setattr(threads.time, "monotonic", lambda: 60.0)
    monkeypatch.setattr(threads.time, "process_time", lambda: 60.0)  # busy for its whole minute
    assert threads._own_load() == pytest.approx(1 - math.exp(-1))
    monkeypatch.setattr(threads.time, "process_time", lambda: 3.0)  # a notebook, idle most of the time
    assert threads._own_load() == pytest.approx(0.05 * (1 - math.exp(-1)))


def test_the_real_machine_s_readings_are_numbers() -> None:
    assert threads.cores() >= 1
    assert threads.others_load() >= 0
    now = threads._runnable_now()
    assert now is None or now >= 0


def test_the_work_of_a_step_is_its_pairs_in_every_restart_and_its_places() -> None:
    places = PlacesTable(names=[f"p{k}" for k in range(3000)], latlon=np.zeros((3000, 2)))
    pairs = PairTable(names=["a", "b", "c", "d"], i=np.array([0, 1, 2]), j=np.array([1, 2, 3]), d=np.ones(3),
                      w=np.ones(3))  # fmt: skip
    assert threads.fit_work(places, None, restarts=2) == 2 * 3000 * 3000 + 3000  # the full n x n matrix
    assert threads.fit_work(places, 16384) == 16384 + 3000  # a pair batch, and the step's O(n) part
    assert threads.fit_work(pairs, None, restarts=3) == 3 * 3 + 4  # the known pairs only
    assert threads.fit_work(pairs, 16384) == 3 + 4  # no batch larger than the known pairs


# ---- setting and giving back -------------------------------------------------------------------------------------


def test_a_small_fit_runs_on_one_thread_and_a_large_one_on_more() -> None:
    assert threads.use_for(36 * 36 + 36) == 1
    assert torch.get_num_threads() == 1
    assert set(blas_threads()) == {1}  # NumPy's and SciPy's BLAS too
    assert threads.use_for(3 * threads.WORK_PER_THREAD) == 3  # the count it set itself is not a user's choice
    assert torch.get_num_threads() == 3


@pytest.mark.parametrize("variable", threads.USER_SETTINGS)
def test_threads_set_in_the_environment_are_kept(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    monkeypatch.setenv(variable, "4")
    assert threads.use_for(100) == 4
    assert torch.get_num_threads() == 4


def test_threads_set_by_the_users_code_are_kept() -> None:
    torch.set_num_threads(3)
    assert threads.use_for(100) == 3
    assert torch.get_num_threads() == 3


def test_kept_gives_torch_s_and_the_blas_s_threads_back() -> None:
    with threadpool_limits(limits=3, user_api="blas"):  # a notebook's own BLAS setting
        with threads.kept():
            threads.use_for(100)
            assert torch.get_num_threads() == 1 and set(blas_threads()) == {1}
        assert torch.get_num_threads() == 4
        assert set(blas_threads()) == {3}


def test_the_fit_command_chooses_the_threads_and_gives_them_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = []
    start = starts.initial_coords

    def spy(*args, **kwargs):  # the start runs under the fit's threads: torch's and the BLAS's
        seen.append((torch.get_num_threads(), *blas_threads()))
        return start(*args, **kwargs)

    monkeypatch.setattr(starts, "initial_coords", spy)
    fit_cli(tmp_path, "--data.path", str(EUROPE), "--trainer.max_epochs", "1", "--model.loss", "stress")
    assert seen and set(seen[0]) == {1}  # 36 places: 1,332 elements a step
    assert torch.get_num_threads() == 4  # the caller's count, given back


def test_the_fit_command_keeps_the_users_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    fit_cli(tmp_path, "--data.path", str(EUROPE), "--trainer.max_epochs", "1")
    assert torch.get_num_threads() == 4


def test_the_estimator_gives_a_notebook_its_threads_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """A notebook's torch threads and threadpoolctl limits are its own: the fit runs on its choice, then gives back."""
    pytest.importorskip("sklearn")
    from citymap_lightning import MDS

    seen = []
    start = starts.initial_coords

    def spy(*args, **kwargs):
        seen.append((torch.get_num_threads(), *blas_threads()))
        return start(*args, **kwargs)

    monkeypatch.setattr(starts, "initial_coords", spy)
    d = geo.distance_matrix(np.random.default_rng(0).uniform([40, -5], [50, 15], (60, 2)))
    with threadpool_limits(limits=3, user_api="blas"):
        before = threadpool_info()
        MDS(metric="precomputed", max_iter=3).fit(d)
        assert torch.get_num_threads() == 4
        assert threadpool_info() == before
    assert set(seen[0]) == {1}  # the start's BLAS ran on the fit's one thread, not the notebook's 3


# ---- the default command on a names-only matrix ------------------------------------------------------------------


def test_a_names_only_matrix_of_a_few_hundred_places_converges_with_the_default_command(tmp_path, caplog):
    """300 Japanese places by name (the most populous, one per name), nothing else given: the default ceiling holds."""
    g = gazetteer.load()
    rows, seen = [], set()
    for r in np.argsort(-g.population, kind="stable"):
        if g.country[r] == "JP" and g.names[r] not in seen:
            seen.add(g.names[r])
            rows.append(int(r))
        if len(rows) == 300:
            break
    names = [g.names[r] for r in rows]
    path = output.write_matrix(tmp_path / "japan.csv", names, names, geo.distance_matrix(g.latlon[rows]))
    with caplog.at_level(logging.INFO, logger="citymap_lightning"):
        fit_cli(tmp_path / "r", "--data.path", str(path), "--map.max_labels", "0", "--map.html", "false")
    (summary,) = [r.getMessage() for r in caplog.records if "after" in r.getMessage() and "stress-1" in r.getMessage()]
    assert ": converged" in summary, summary
    assert "local minimum" not in caplog.text
