"""remoting.heap: glibc's arena limit and trim where there is glibc, nothing anywhere else."""

from __future__ import annotations

import os

import pytest

from hcibenefit.remoting import heap


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap, "_looked", False)
    monkeypatch.setattr(heap, "_libc", None)
    monkeypatch.setattr(heap, "_limited", False)
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)


def _glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")  # type: ignore[union-attr]
    except (AttributeError, ValueError):
        return False


@pytest.mark.skipif(not _glibc(), reason="glibc only")
def test_on_glibc_the_arenas_are_limited_once_and_free_heap_goes_back(
    fresh: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[int, int]] = []
    assert heap._glibc() is not None
    real = heap._libc

    class Recording:
        def mallopt(self, param: int, value: int) -> int:
            calls.append((param, value))
            return 1

        def malloc_trim(self, pad: int) -> int:
            return int(real.malloc_trim(pad))

    monkeypatch.setattr(heap, "_libc", Recording())
    assert heap.limit_arenas() is True
    assert heap.limit_arenas() is True
    assert calls == [(-8, heap.MAX_ARENAS)], "M_ARENA_MAX set once, to MAX_ARENAS"
    blocks = [bytearray(200_000) for _ in range(50)]  # C heap, then freed
    del blocks
    heap.give_back_free_heap()  # True or False depending on what was free: it must not fail


def test_the_users_malloc_arena_max_wins(fresh: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")

    class Refusing:
        def mallopt(self, param: int, value: int) -> int:
            raise AssertionError("mallopt called although the user set MALLOC_ARENA_MAX")

    monkeypatch.setattr(heap, "_looked", True)
    monkeypatch.setattr(heap, "_libc", Refusing())
    assert heap.limit_arenas() is False


@pytest.mark.parametrize(
    "confstr",
    [
        pytest.param(None, id="no os.confstr (Windows)"),
        pytest.param(
            lambda name: (_ for _ in ()).throw(ValueError("unrecognized configuration name")), id="musl"
        ),
        pytest.param(lambda name: None, id="unset"),
        pytest.param(lambda name: "musl 1.2", id="another libc"),
    ],
)
def test_without_glibc_nothing_is_called(
    fresh: None, monkeypatch: pytest.MonkeyPatch, confstr: object
) -> None:
    if confstr is None:
        monkeypatch.delattr(os, "confstr", raising=False)
    else:
        monkeypatch.setattr(os, "confstr", confstr)
    assert heap.limit_arenas() is False
    assert heap.give_back_free_heap() is False
    assert heap._libc is None
