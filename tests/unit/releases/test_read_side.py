"""The read side without services: the window cache, follower names, cursor rows, window look-ups."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from releases import queries
from releases.cache import Lru
from releases.cursors import Cursor, MemoryCursor, check_follower_name
from releases.exceptions import FollowerNameError
from releases.models import Window

T0 = datetime(2030, 3, 1, 12, 0, tzinfo=UTC)


def window(minute: int) -> Window:
    start = T0.replace(minute=minute)
    return Window(start, start.replace(minute=minute + 1), start.replace(minute=minute + 1), 1.5, 0.001,
                  "gaussian", 37)  # fmt: skip


def test_lru_evicts_the_least_recently_read() -> None:
    lru = Lru(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # "b" is now the oldest
    lru.put("c", 3)
    assert lru.get("b") is None
    assert (lru.get("a"), lru.get("c"), len(lru)) == (1, 3, 2)


def test_a_window_row_becomes_aware_utc() -> None:
    naive = datetime(2030, 3, 1, 12, 0)
    w = Window.from_row((naive, naive.replace(minute=1), naive.replace(minute=1, second=2), "1.5", "0.001",
                         "gaussian", "37"))  # fmt: skip
    assert w.start == T0 and w.start.tzinfo is UTC
    assert (w.lag_s, w.rho, w.base_cells) == (1.5, 0.001, 37)


@pytest.mark.parametrize("name", ["alerts", "tourism-daily", "open.data_v2", "a" * 64])
def test_good_follower_names(name: str) -> None:
    assert check_follower_name(name) == name


@pytest.mark.parametrize("name", ["", "Alerts", "1st", "alerts;drop", "a b", "a" * 65, "ünicode"])
def test_bad_follower_names_are_refused_with_a_sentence(name: str) -> None:
    with pytest.raises(FollowerNameError, match="follower name .* is not allowed: use 1-64 characters"):
        check_follower_name(name)
    assert issubclass(FollowerNameError, ValueError)  # a ConfigError: callers may catch either


def test_a_memory_cursor_moves_with_each_commit() -> None:
    cursor = MemoryCursor()
    assert cursor.load() is None
    cursor.save(window(3))
    cursor.save(window(4))
    assert cursor.load() == Cursor(window(4).start, window(4).released_at)


def test_window_look_ups_are_parameterized_and_ordered() -> None:
    sql, params = queries.windows_after(T0, 50)
    assert "window_start > toDateTime(%(t)s)" in sql and sql.endswith("ORDER BY window_start LIMIT %(n)s")
    assert params == {"t": int(T0.timestamp()), "n": 50}
    sql, params = queries.windows_after(None)
    assert "WHERE" not in sql and params == {}
    sql, _ = queries.latest_window()
    assert sql.endswith("ORDER BY window_start DESC LIMIT 1")
    every = [queries.latest_window(), queries.windows_after(T0), queries.window_at(T0)]
    every.append(queries.recent_windows(3))
    for q in every:
        assert "FROM release_windows FINAL" in q[0]  # ReplacingMergeTree: read the merged view
