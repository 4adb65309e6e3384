"""The boosters' OpenMP threads spin briefly on free cores and sleep on shared ones (a 3-6x
difference in training and scoring speed either way, measured on 2 cores: see shared/openmp.py)."""

from __future__ import annotations

import pytest

from shared import openmp


@pytest.fixture
def two_cores(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    monkeypatch.setattr(openmp.os, "cpu_count", lambda: 2)
    return monkeypatch


def test_free_cores_spin_briefly(two_cores: pytest.MonkeyPatch) -> None:
    two_cores.setattr(openmp.os, "getloadavg", lambda: (0.4, 0.5, 0.5))
    assert openmp.openmp_environment() == {"GOMP_SPINCOUNT": openmp.SHORT_SPIN}


def test_busy_cores_make_threads_wait_passively(two_cores: pytest.MonkeyPatch) -> None:
    two_cores.setattr(openmp.os, "getloadavg", lambda: (2.3, 1.0, 0.5))
    assert openmp.openmp_environment() == {"OMP_WAIT_POLICY": "PASSIVE"}


@pytest.mark.parametrize("name", ["OMP_WAIT_POLICY", "GOMP_SPINCOUNT"])
def test_an_explicit_setting_wins(two_cores: pytest.MonkeyPatch, name: str) -> None:
    two_cores.setenv(name, "ACTIVE" if name == "OMP_WAIT_POLICY" else "300000")
    two_cores.setattr(openmp.os, "getloadavg", lambda: (5.0, 5.0, 5.0))
    assert openmp.openmp_environment() == {}
