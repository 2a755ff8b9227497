"""``/open-data/``: the exported days (opendata/), open without a key: an index page and each
day's files. Only the names a day folder holds are served (no path from the request reaches the
file system), and days beyond the release retention are gone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import anyio.to_thread
from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse

from api.deps import SettingsDep
from api.exceptions import BadRequestError, NotFoundError
from opendata.dataset import DAY_FOLDER, FILES, day_folder, opendata_root
from opendata.index import render_index

router = APIRouter(include_in_schema=False)

_MEDIA = {
    "README.md": "text/markdown; charset=utf-8",
    "datapackage.json": "application/json",
    "cells.csv": "text/csv; charset=utf-8",
    "zones.csv": "text/csv; charset=utf-8",
    "tourism.csv": "text/csv; charset=utf-8",
    "cells.parquet": "application/vnd.apache.parquet",
    "tourism.parquet": "application/vnd.apache.parquet",
}
#: Exported days never change, so a browser or proxy may keep a file for a day.
_FILE_CACHE = "public, max-age=86400"


@router.get("/open-data")
@router.get("/open-data/")
async def open_data_index(settings: SettingsDep) -> HTMLResponse:
    html = await anyio.to_thread.run_sync(
        render_index, opendata_root(settings), settings.release_retention_days
    )
    return HTMLResponse(html, headers={"Cache-Control": "public, max-age=60"})


@router.get("/open-data/{day}/{name}")
async def open_data_file(day: str, name: str, settings: SettingsDep) -> FileResponse:
    if not DAY_FOLDER.match(day):
        raise BadRequestError(f"{day[:40]!r} is not a day: use YYYY-MM-DD")
    try:
        when = date.fromisoformat(day)
    except ValueError:
        raise BadRequestError(f"{day!r} is not a calendar day") from None
    if name not in FILES:
        raise NotFoundError(f"a day's folder holds only {', '.join(FILES)}")
    oldest = datetime.now(UTC).date() - timedelta(days=settings.release_retention_days)
    if when < oldest:
        raise NotFoundError(f"{day} is beyond the release retention ({settings.release_retention_days} days)")
    path = day_folder(opendata_root(settings), when) / name
    if not path.is_file():
        raise NotFoundError(f"{day} has not been exported (a day is exported once it is fully released)")
    return FileResponse(path, media_type=_MEDIA[name], headers={"Cache-Control": _FILE_CACHE})
