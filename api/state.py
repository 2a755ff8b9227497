"""What one API process holds: settings, the ClickHouse pool, caches, keys, limiter, live feed."""

from __future__ import annotations

from dataclasses import dataclass

from api.density import PayloadCache
from api.keys import KeyStore
from api.live import WindowFeed
from api.ratelimit import RateLimiter
from api.sums import SumVariance
from api.zones import ZoneStore
from hexpulse.settings import Settings
from hexpulse.store.pool import ClickHousePool
from releases.reader import ReleaseReader


@dataclass
class ApiState:
    settings: Settings
    pool: ClickHousePool
    reader: ReleaseReader
    payloads: PayloadCache
    feed: WindowFeed
    sums: SumVariance
    zones: ZoneStore

    @classmethod
    def build(cls, settings: Settings) -> tuple[ApiState, KeyStore, RateLimiter]:
        pool = ClickHousePool(settings)
        reader = ReleaseReader(pool, settings.api_cache_entries, latest_ttl_s=settings.api_stream_poll_s)
        state = cls(
            settings=settings,
            pool=pool,
            reader=reader,
            payloads=PayloadCache(settings.api_cache_entries),
            feed=WindowFeed(pool, settings.api_stream_poll_s),
            sums=SumVariance(settings, reader),
            zones=ZoneStore(pool, settings),
        )
        return state, KeyStore(pool, settings.api_key_cache_s), RateLimiter(settings.rate_limit_per_min)
