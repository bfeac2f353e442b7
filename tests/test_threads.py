"""The thread policy: torch's intra-op threads chosen from a step's work, a user's own choice kept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import EUROPE, fit_cli

from citymap_lightning import threads
from citymap_lightning.tables import PairTable, PlacesTable


@pytest.fixture(autouse=True)
def _threads_restored(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts as a fresh process with 4 default threads and no user setting; torch's count is restored."""
    saved = torch.get_num_threads()
    for name in threads.USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(threads, "_DEFAULT", 4)
    monkeypatch.setattr(threads, "_chosen", [])
    torch.set_num_threads(4)
    yield
    torch.set_num_threads(saved)


def test_threads_grow_with_the_work_of_a_step_up_to_the_default() -> None:
    per = threads.WORK_PER_THREAD
    assert threads.threads_for(0) == 1
    assert threads.threads_for(per - 1) == 1
    assert threads.threads_for(2 * per) == 2
    assert threads.threads_for(3 * per + 5) == 3
    assert threads.threads_for(100 * per) == 4
    assert threads.threads_for(100 * per, most=2) == 2


def test_the_work_of_a_step_is_its_pairs_in_every_restart_and_its_places() -> None:
    places = PlacesTable(names=[f"p{k}" for k in range(3000)], latlon=np.zeros((3000, 2)))
    pairs = PairTable(names=["a", "b", "c", "d"], i=np.array([0, 1, 2]), j=np.array([1, 2, 3]), d=np.ones(3),
                      w=np.ones(3))  # fmt: skip
    assert threads.fit_work(places, None, restarts=2) == 2 * 3000 * 3000 + 3000  # the full n x n matrix
    assert threads.fit_work(places, 16384) == 16384 + 3000  # a pair batch, and the step's O(n) part
    assert threads.fit_work(pairs, None, restarts=3) == 3 * 3 + 4  # the known pairs only
    assert threads.fit_work(pairs, 16384) == 3 + 4  # no batch larger than the known pairs


def test_a_small_fit_runs_on_one_thread_and_a_large_one_on_more() -> None:
    assert threads.use_for(36 * 36 + 36) == 1
    assert torch.get_num_threads() == 1
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


def test_the_fit_command_chooses_the_threads_when_it_starts(tmp_path: Path) -> None:
    fit_cli(tmp_path, "--data.path", str(EUROPE), "--trainer.max_epochs", "1")
    assert torch.get_num_threads() == 1  # 36 places: 1,332 elements a step


def test_the_fit_command_keeps_the_users_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    fit_cli(tmp_path, "--data.path", str(EUROPE), "--trainer.max_epochs", "1")
    assert torch.get_num_threads() == 4
