"""The read side of released data: what every product (API, live stream, alerts, tourism, open
data) may read, and the release feed they follow.

``releases`` reads the public release tables (``release_windows``, ``release_cells``,
``release_ledger``) and keeps the feed's cursors (``feed_cursors``). It imports only ``hexpulse``:
a product imports it without importing the pipeline (ingest, aggregate, privacy).

- :mod:`releases.models`: ``Window`` and ``CellRow``, one released window and one released cell.
- :mod:`releases.queries`: the SQL of window look-ups, shared by the async reader and the feed.
- :mod:`releases.reader`: ``ReleaseReader``, async reads with caches of immutable windows.
- :mod:`releases.feed`: ``ReleaseFeed``, walking released windows in release order from a cursor.
- :mod:`releases.cursors`: where a feed keeps its cursor (in memory, or durable in ClickHouse).
- :mod:`releases.follower`: ``Follower``, the durable loop a product process runs.
- :mod:`releases.traffic`: released speed bins (``release_traffic``), one window's or pooled.
"""
