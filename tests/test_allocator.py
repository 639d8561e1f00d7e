"""keep_freed_memory: applied on glibc, a no-op elsewhere; either way training code may call it any number of times."""

from __future__ import annotations

import platform

import pytest

from fer_lightning import allocator


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_applies_on_glibc_and_can_repeat() -> None:
    assert allocator.keep_freed_memory() is True
    assert allocator.keep_freed_memory() is True


def test_without_a_c_library_it_reports_false(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator.ctypes.util, "find_library", lambda name: None)
    assert allocator.keep_freed_memory() is False
