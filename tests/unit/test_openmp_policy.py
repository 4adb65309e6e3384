"""The boosters' OpenMP threads spin on free cores and sleep on shared ones (a 6x training speed
difference either way, measured on 2 cores: see shared/training/openmp.py)."""

from __future__ import annotations

import pytest

from shared.training import openmp


@pytest.fixture
def two_cores(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setattr(openmp.os, "cpu_count", lambda: 2)
    return monkeypatch


def test_free_cores_keep_the_default_spinning(two_cores: pytest.MonkeyPatch) -> None:
    two_cores.setattr(openmp.os, "getloadavg", lambda: (0.4, 0.5, 0.5))
    assert openmp.openmp_environment() == {}


def test_busy_cores_make_threads_wait_passively(two_cores: pytest.MonkeyPatch) -> None:
    two_cores.setattr(openmp.os, "getloadavg", lambda: (2.3, 1.0, 0.5))
    assert openmp.openmp_environment() == {"OMP_WAIT_POLICY": "PASSIVE"}


def test_an_explicit_setting_wins(two_cores: pytest.MonkeyPatch) -> None:
    two_cores.setenv("OMP_WAIT_POLICY", "ACTIVE")
    two_cores.setattr(openmp.os, "getloadavg", lambda: (5.0, 5.0, 5.0))
    assert openmp.openmp_environment() == {}
