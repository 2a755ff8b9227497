"""API building blocks without services: geometry parsing, congestion levels, buckets, key tokens."""

from __future__ import annotations

import h3
import pytest
from hypothesis import given
from hypothesis import strategies as st
from shapely.geometry import box

from api.congestion import congestion
from api.exceptions import AuthenticationError, BadRequestError, RateLimitedError, UnknownCellError
from api.geo import area_km2, bbox_cover, parse_bbox, parse_cell, parse_polygon
from api.keys import digest, split_token
from api.ratelimit import RateLimiter


def test_bbox_parsing() -> None:
    assert parse_bbox("113.2,23.0,113.4,23.2") == (113.2, 23.0, 113.4, 23.2)
    for bad in ("", "1,2,3", "1,2,3,x", "3,2,1,4", "1,4,3,2", "1,2,3,inf", "-181,0,0,1"):
        with pytest.raises(BadRequestError):
            parse_bbox(bad)


def test_area_of_the_demo_area_is_about_23_by_23_km() -> None:
    assert area_km2(box(113.2073, 23.0264, 113.4327, 23.2336)) == pytest.approx(23.1 * 23.1, rel=0.03)


@given(lon=st.floats(-170, 170), lat=st.floats(-70, 70), w=st.floats(0.001, 0.05), h=st.floats(0.001, 0.05))
def test_bbox_cover_holds_every_cell_of_points_inside(lon: float, lat: float, w: float, h: float) -> None:
    cells = bbox_cover((lon, lat, lon + w, lat + h), 7)
    for fx, fy in ((0.5, 0.5), (0.01, 0.01), (0.99, 0.99)):
        assert h3.str_to_int(h3.latlng_to_cell(lat + fy * h, lon + fx * w, 7)) in cells


def test_polygon_validation() -> None:
    square = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
    assert parse_polygon(square, 10).area == 1
    assert parse_polygon({"type": "Feature", "geometry": square}, 10).area == 1
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    with pytest.raises(BadRequestError, match="self-intersect"):
        parse_polygon(bowtie, 10)
    with pytest.raises(BadRequestError, match="vertices"):
        parse_polygon(square, 4)
    with pytest.raises(BadRequestError):
        parse_polygon({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}, 10)


def test_cell_parsing() -> None:
    cell = h3.latlng_to_cell(23.1, 113.3, 9)
    assert parse_cell(cell, (9, 8, 7)) == h3.str_to_int(cell)
    with pytest.raises(UnknownCellError, match="resolution 10"):
        parse_cell(h3.latlng_to_cell(23.1, 113.3, 10), (9, 8, 7))
    for bad in ("", "nothex", "ffffffffffffffff", "1" + "0" * 20):  # the last: over 64 bits
        with pytest.raises(UnknownCellError):
            parse_cell(bad, (9,))


@pytest.mark.parametrize(
    ("current", "free", "level"),
    [(50, 50, "free"), (60, 50, "free"), (39, 50, "light"), (30, 50, "moderate"), (20, 50, "heavy"),
     (16, 50, "severe"), (None, 50, None), (30, None, None)],
)  # fmt: skip
def test_congestion_levels(current: float | None, free: float | None, level: str | None) -> None:
    index, got = congestion(current, free)
    assert got == level
    if level is not None:
        assert index == pytest.approx(free / current, abs=1e-3)  # type: ignore[operator]


def test_token_bucket() -> None:
    limiter = RateLimiter(per_min=3)
    for _ in range(3):
        limiter.take("a")
    with pytest.raises(RateLimitedError) as exc:
        limiter.take("a")
    assert 0 < exc.value.retry_after_s <= 20.0  # one token per 20 s at 3/min
    limiter.take("b")


def test_key_tokens() -> None:
    assert split_token("hxp_0123456789ab_secret_with_underscores") == (
        "0123456789ab",
        "secret_with_underscores",
    )
    for bad in ("", "abc", "hxp_short_x", "xyz_0123456789ab_s", "hxp_0123456789ab_"):
        with pytest.raises(AuthenticationError):
            split_token(bad)
    assert digest("s", b"salt1") != digest("s", b"salt2") and len(digest("s", b"x")) == 32
