"""One frozen settings object, read from ``HEXPULSE_*`` environment variables.

Every variable is documented in README.md (section "Settings"). Invalid values stop start-up with
one sentence (see :func:`load_settings`), never a traceback.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from hexpulse.errors import ConfigError
from hexpulse.times import S_PER_DAY, windows_per_day

IntList = Annotated[tuple[int, ...], NoDecode]
_DB_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
StrList = Annotated[tuple[str, ...], NoDecode]


class Settings(BaseSettings):
    """All configuration. Units are in the names: ``_s`` seconds, ``_m`` metres, ``_mps`` m/s."""

    model_config = SettingsConfigDict(env_prefix="HEXPULSE_", frozen=True, extra="ignore")

    environment: Literal["development", "production"] = "development"
    state_dir: Path = Path(".local")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Kafka
    kafka_bootstrap: str = "127.0.0.1:19092"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    kafka_sasl_password_file: Path | None = None  # e.g. a Docker secret; used when no password is set
    topic_pings: str = "pings"
    topic_dlq: str = "pings.dlq"
    topic_partitions: int = Field(3, ge=1, le=10_000)
    topic_replication: int = Field(1, ge=1, le=10)
    # Who stamps a ping record's time, the broker (LogAppendTime) or the producer (CreateTime, a
    # trusted gateway or a backfill acting as one); docs/DEPLOY.md "Record timestamps".
    topic_timestamp_type: Literal["LogAppendTime", "CreateTime"] = "LogAppendTime"
    topic_pings_retention_h: int = Field(24, ge=1, le=8760)
    topic_dlq_retention_h: int = Field(48, ge=1, le=8760)
    consumer_group: str = "hexpulse-aggregate"

    # ClickHouse
    clickhouse_host: str = "127.0.0.1"
    clickhouse_port: int = Field(19000, ge=1, le=65535)
    clickhouse_database: str = Field("hexpulse", pattern=_DB_NAME)
    # The exact partials and progress (restricted: only the pipeline user may read them).
    clickhouse_exact_database: str | None = Field(None, pattern=_DB_NAME)
    clickhouse_user: str = "default"
    clickhouse_password: SecretStr = SecretStr("")
    clickhouse_password_file: Path | None = None  # e.g. a Docker secret; used when no password is set
    # The API and every product read as this user, whose allow_databases is the public database only.
    api_clickhouse_user: str = "hexpulse_api"
    api_clickhouse_password: SecretStr = SecretStr("")
    api_clickhouse_password_file: Path | None = None
    clickhouse_secure: bool = False
    clickhouse_ca_certs: Path | None = None

    # Ping contract limits (docs/PINGS.md)
    max_message_bytes: int = Field(262_144, ge=256)
    max_batch_pings: int = Field(500, ge=1)
    max_clock_skew_s: int = Field(300, ge=0)
    max_ping_age_s: int = Field(6 * 3600, ge=60)
    max_accuracy_m: float = Field(200.0, gt=0)
    max_speed_mps: float = Field(90.0, gt=0)

    # Windows and binning
    window_s: int = Field(60, ge=10, le=3600)
    lateness_s: int = Field(30, ge=0, le=3600)
    idle_timeout_s: float = Field(15.0, gt=0)
    base_resolution: int = Field(9, ge=0, le=15)
    release_resolutions: IntList = (9, 8, 7)

    # Contribution bounding (per device)
    cells_per_window: int = Field(1, ge=1, le=16)
    windows_per_device_day: int = Field(1440, ge=1)
    # W_t: the windows of a device-day whose speed bins count, its first moving ones (the traffic
    # products only; privacy/release/traffic_bound.py). A device moves in few windows of its day, so
    # charging traffic for W_t windows instead of every window lowers its noise by √(W / W_t).
    traffic_windows_per_device_day: int = Field(120, ge=1)
    speed_clamp_mps: float = Field(50.0, gt=0)
    moving_speed_mps: float = Field(2.0, gt=0)
    # Upper edges (whole km/h) of the moving devices' speed bins: [moving, e1), [e1, e2), …, [last, ∞).
    traffic_speed_edges_kmh: IntList = (20, 35, 50, 65, 80)
    # Resolution of the released speed bins (the plan's `traffic` product); at most the base
    # resolution, independent of the released density resolutions.
    traffic_resolution: int = Field(8, ge=0, le=15)
    # Free flow of a cell = mean speed of its released bins summed over these quiet UTC hours
    # (default 14–21 UTC: 22:00–06:00 in the simulated city, UTC+8) of the trailing days.
    traffic_free_flow_hours_utc: IntList = (14, 15, 16, 17, 18, 19, 20, 21)
    traffic_free_flow_days: int = Field(7, ge=1, le=60)

    # Privacy
    budget_rho_per_day: float = Field(1.0, gt=0)
    report_delta: float = Field(1e-6, gt=0, lt=1)
    noise_mechanism: Literal["gaussian", "laplace"] = "gaussian"
    release_metrics: StrList = ("count", "moving", "speed")
    budget_count_share: float = Field(0.5, gt=0, le=1)
    budget_resolution_shares: StrList = ()
    # Shares of the device-day ρ per product (privacy/release/budget.py, PRIVACY.md "Where the budget goes").
    budget_plan: StrList = (
        "cells:0.45", "traffic:0.10", "traffic.corridor:0.15", "zones.crowd:0.20", "zones.district:0.05",
        "tourism.visitors:0.03", "tourism.dwell:0.02",
    )  # fmt: skip
    release_poll_s: float = Field(1.0, gt=0)
    master_key: SecretStr | None = None
    master_key_file: Path | None = None
    keyring_path: Path | None = None
    key_retention_days: int = Field(2, ge=1)
    service_area_path: Path | None = None
    partials_grace_h: int = Field(24, ge=1)
    release_retention_days: int = Field(400, ge=1)

    # Tourism daily (privacy/release/tourism_daily.py): a device-day counts in at most K
    # (area, local day) pairs, its first K (PRIVACY.md "Tourism daily")
    tourism_max_areas: int = Field(3, ge=1, le=32)

    # Open data (opendata/): exported days, kept for the release retention
    opendata_dir: Path | None = None  # default: <state_dir>/open-data
    opendata_follower: str = "opendata"

    # API
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    cors_origins: StrList = ()
    rate_limit_per_min: int = Field(600, ge=1)
    basemap_tiles_url: str = ""
    api_max_bbox_km2: float = Field(2500.0, gt=0)
    api_max_polygon_vertices: int = Field(2000, ge=4)
    zone_max_area_km2: float = Field(100.0, gt=0)
    api_max_range_h: float = Field(48.0, gt=0)
    api_key_cache_s: float = Field(5.0, ge=0)
    api_stream_poll_s: float = Field(1.0, gt=0)
    api_fresh_release_s: float = Field(300.0, gt=0)
    api_cache_entries: int = Field(256, ge=1)
    api_db_pool: int = Field(4, ge=1, le=64)
    # Limits against hostile clients (api/limits.py; RELIABILITY.md §4)
    api_max_body_bytes: int = Field(262_144, ge=1024)
    api_streams_per_key: int = Field(10, ge=1)
    api_max_streams: int = Field(1000, ge=1)
    # Smoothing of released counts across windows (releases/smoothing.py; BENCHMARKS.md "Smoothing")
    smoothing_windows: int = Field(10, ge=2, le=120)
    smoothing_process_abs: float = Field(2.0, ge=0)
    smoothing_process_rel: float = Field(0.1, ge=0)
    smoothing_jump_z: float = Field(4.0, gt=0)

    # Consumer metrics endpoint (0.0.0.0 in containers so Prometheus can scrape it)
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(9108, ge=0, le=65535)
    # Aggregate consumer loop
    consumer_max_poll_records: int = Field(5000, ge=1, le=1_000_000)
    consumer_fetch_bytes: int = Field(8 * 1024 * 1024, ge=65_536)
    consumer_fast_decode: bool = True
    sink_retry_max_s: float = Field(10.0, gt=0)
    flush_interval_s: float = Field(1.0, ge=0)
    shutdown_timeout_s: float = Field(20.0, gt=0)
    # No-progress watchdog: owing work (lag, an unresumed partition, no assignment) this long with
    # nothing handled ends the consumer with exit status 75 for its supervisor to restart; 0 = off.
    consumer_stall_timeout_s: float = Field(120.0, ge=0)

    # Crowd-safety alerts (alerts/, docs/ALERTS.md)
    alerts_zone_set: str = "crowd"
    alerts_expiry_s: float = Field(900.0, ge=10)
    alerts_delivery_timeout_s: float = Field(5.0, gt=0, le=60)
    alerts_delivery_concurrency: int = Field(8, ge=1, le=256)
    alerts_allow_networks: StrList = ()
    alerts_lease_term_s: float = Field(10.0, ge=2)
    alerts_poll_s: float = Field(1.0, gt=0)
    alerts_metrics_port: int = Field(9110, ge=0, le=65535)

    @field_validator(
        "release_resolutions", "traffic_speed_edges_kmh", "traffic_free_flow_hours_utc", mode="before"
    )
    @classmethod
    def _split_ints(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return tuple(int(part) for part in value.split(",") if part.strip())
            except ValueError as exc:
                raise ValueError("must be a comma-separated list of integers, e.g. 9,8,7") from exc
        return value

    @field_validator(
        "cors_origins", "release_metrics", "budget_resolution_shares", "budget_plan", "alerts_allow_networks",
        mode="before",
    )
    @classmethod
    def _split_strs(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @model_validator(mode="before")
    @classmethod
    def _passwords_from_files(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        for name in ("clickhouse_password", "api_clickhouse_password", "kafka_sasl_password"):
            file = data.get(f"{name}_file")
            if data.get(name) or not file:
                continue
            try:
                secret = Path(str(file)).read_text(encoding="utf-8").strip()
            except OSError as exc:
                msg = f"cannot read HEXPULSE_{name.upper()}_FILE {file}: {exc.strerror}"
                raise ValueError(msg) from None
            data = {**data, name: secret}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        res = self.release_resolutions
        if not res or any(r > self.base_resolution or r < 0 for r in res):
            raise ValueError(
                f"release_resolutions {list(res)} must be non-empty and each at most the base "
                f"resolution {self.base_resolution}"
            )
        if self.base_resolution not in res:
            raise ValueError("release_resolutions must include the base resolution")
        edges = self.traffic_speed_edges_kmh
        if not edges or edges[0] <= 0 or any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
            raise ValueError(f"traffic_speed_edges_kmh {list(edges)} must be positive, strictly increasing")
        if any(not 0 <= h <= 23 for h in self.traffic_free_flow_hours_utc):
            hours = list(self.traffic_free_flow_hours_utc)
            raise ValueError(f"traffic_free_flow_hours_utc {hours} must be hours 0..23")
        if S_PER_DAY % self.window_s:
            raise ValueError(f"window_s={self.window_s} must divide a day (86400 s) evenly")
        per_day = windows_per_day(self.window_s)
        # Bounding keeps a device in the windows whose index in the day is congruent to its
        # pseudonym modulo per_day // W (aggregate/bounding.py); only an exact divisor makes that
        # W windows, so any other W would let a device into more windows than the ledger charges.
        if self.windows_per_device_day > per_day or per_day % self.windows_per_device_day:
            near = _divisor_near(per_day, self.windows_per_device_day)
            raise ValueError(
                f"windows_per_device_day={self.windows_per_device_day} must divide the {per_day} "
                f"windows of a day evenly (window_s={self.window_s}), e.g. {near}"
            )
        # Pseudonym keys exist for days today-key_retention_days .. today+1 (docs/KEYS.md): every
        # ping that passes the age and skew checks must fall on a day that has a key.
        if self.max_ping_age_s > self.key_retention_days * S_PER_DAY:
            raise ValueError(
                f"max_ping_age_s={self.max_ping_age_s} exceeds the pseudonym key retention of "
                f"{self.key_retention_days} days; raise key_retention_days or lower max_ping_age_s"
            )
        if self.max_clock_skew_s > S_PER_DAY:
            raise ValueError("max_clock_skew_s must be at most 86400 (pseudonym keys exist up to tomorrow)")
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_username and self.kafka_sasl_password.get_secret_value()
        ):
            raise ValueError(
                f"HEXPULSE_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "HEXPULSE_KAFKA_SASL_USERNAME and HEXPULSE_KAFKA_SASL_PASSWORD (or _FILE)"
            )
        if self.exact_database == self.clickhouse_database:
            raise ValueError(
                "clickhouse_exact_database must differ from clickhouse_database: the API user may read "
                "all of the public database"
            )
        # Secrets are checked where they are used (the master key in privacy.keys.master_key, each
        # ClickHouse password when its user connects, hexpulse.store.client), so a process holds only
        # its own: the API runs without the master key and without the pipeline's password.
        if self.environment == "production" and self.api_clickhouse_user == self.clickhouse_user:
            raise ValueError(
                "in production the API needs its own ClickHouse user (HEXPULSE_API_CLICKHOUSE_USER), "
                "one that cannot read the exact partials"
            )
        return self

    @property
    def exact_database(self) -> str:
        """The restricted database of the exact partials and progress (default ``<database>_exact``)."""
        return self.clickhouse_exact_database or f"{self.clickhouse_database}_exact"

    @property
    def traffic_window_bound(self) -> int:
        """W_t in effect: at most W (a device is in no more than W windows a day anyway)."""
        return min(self.traffic_windows_per_device_day, self.windows_per_device_day)

    @property
    def window_ms(self) -> int:
        return self.window_s * 1000

    @property
    def lateness_ms(self) -> int:
        return self.lateness_s * 1000

    def resolved_master_key_file(self) -> Path:
        return self.master_key_file or self.state_dir / "master.key"

    def resolved_keyring_path(self) -> Path:
        return self.keyring_path or self.state_dir / "keyring.bin"


def _divisor_near(n: int, target: int) -> int:
    """The largest divisor of ``n`` not above ``target`` (at least 1), for error messages."""
    return max(d for d in range(1, min(n, max(target, 1)) + 1) if n % d == 0)


def _sentence(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = err.get("loc") or ()
    field = str(loc[0]) if loc else ""
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    if field:
        return f"Invalid setting HEXPULSE_{field.upper()}: {msg}."
    return f"Invalid settings: {msg}."


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, turning validation errors into one ConfigError."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(_sentence(exc)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; tests build their own with :func:`load_settings`)."""
    return load_settings()
