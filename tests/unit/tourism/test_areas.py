"""Checks of a tourism area's fields (no store)."""

from __future__ import annotations

import pytest

from tourism.areas import DEFAULT_TIMEZONE, MAX_CAPACITY, AreaError, check_fields, check_id


def test_fields_are_normalized() -> None:
    assert check_fields("  Baiyun ", 5000, DEFAULT_TIMEZONE) == ("Baiyun", 5000, "Asia/Shanghai")
    assert check_fields("x", None, "UTC") == ("x", None, "UTC")


@pytest.mark.parametrize(
    ("name", "capacity", "tz", "message"),
    [("", None, "UTC", "name"), ("x" * 201, None, "UTC", "name"), ("x", 0, "UTC", "capacity"),
     ("x", MAX_CAPACITY + 1, "UTC", "capacity"), ("x", None, "Mars/Olympus", "time zone"),
     ("x", None, "../../etc/passwd", "time zone")],
)  # fmt: skip
def test_bad_fields(name: str, capacity: int | None, tz: str, message: str) -> None:
    with pytest.raises(AreaError, match=message):
        check_fields(name, capacity, tz)


def test_ids() -> None:
    assert check_id("baiyun-1") == "baiyun-1"
    assert check_id(None).startswith("a")
    with pytest.raises(AreaError, match="area id"):
        check_id("Bad Id")
