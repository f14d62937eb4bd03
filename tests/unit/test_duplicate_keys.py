"""Duplicate delivery keys: remembered on disk, across the commit batches, then removed."""

from __future__ import annotations

from pathlib import Path

import pytest

from campaign_runner.prepare import DuplicateKeys


@pytest.mark.parametrize(
    ("keys", "first_times"),
    [
        (["a", "b", "c"], [True, True, True]),
        (["a", "a"], [True, False]),
        (["a", "b", "a", "b", "c"], [True, True, False, False, True]),
        (["+5511948489500", "+5511948489500-7", "+5511948489500"], [True, True, False]),
        (["", ""], [True, False]),
    ],
)
def test_a_key_is_new_only_the_first_time(keys, first_times):
    seen = DuplicateKeys()
    try:
        assert [seen.first_time(key) for key in keys] == first_times
    finally:
        seen.close()


def test_keys_survive_the_periodic_commit(monkeypatch):
    monkeypatch.setattr(DuplicateKeys, "_COMMIT_EVERY", 3)
    seen = DuplicateKeys()
    try:
        assert all(seen.first_time(str(n)) for n in range(10))
        assert not any(seen.first_time(str(n)) for n in range(10))
    finally:
        seen.close()


def test_the_temporary_file_is_removed_on_close():
    seen = DuplicateKeys()
    path = Path(seen._path)
    assert path.exists()
    seen.close()
    assert not path.exists()
