"""Alerts resource: subscriptions (scope ``alerts:write``), their events and deliveries."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class LevelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=32)
    threshold: float = Field(description="raised above this (persons, or persons/m² for crowd_density); "
                             "for traffic_speed raised *below* this (km/h)")
    clear: float | None = Field(None, description="left below this; default threshold × (1 − hysteresis); "
                                "for traffic_speed left above this, default threshold × (1 + hysteresis)")


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048, description="https (or http) URL; must resolve to a public address")
    secrets: list[str] = Field(
        default_factory=list, max_length=3,
        description="whsec_ secrets, newest first; one is generated when empty",
    )


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=200)
    zone_id: str | None = Field(None, max_length=64, description="a registered zone")
    geometry: dict[str, Any] | None = Field(None, description="GeoJSON (Multi)Polygon: registers a zone")
    metric: Literal["crowd_count", "crowd_density", "traffic_speed"] = Field(
        "crowd_density", description="traffic_speed: mean speed (km/h) of the moving devices in the "
        "released speed bins of the cells covering the zone; its levels fire below their thresholds",
    )
    expansion: float = Field(1.0, description="persons per device (1: the values are devices, labeled so); "
                             "crowd metrics only")
    levels: list[LevelIn] | None = Field(
        None, max_length=8, description="ascending; default caution 2, alert 3.5, serious 5 /m²; "
        "traffic_speed: descending, default slow 30, jam 15 km/h",
    )
    hysteresis: float = Field(0.2, ge=0, lt=1, description="clear = threshold × (1 − hysteresis) by default "
                              "(× (1 + hysteresis) for traffic_speed)")
    min_windows: int = Field(2, ge=1, le=60)
    confidence: float = Field(0.5, ge=0.5, lt=1, description="P(true > threshold) needed per window "
                              "(P(true < threshold) for traffic_speed)")
    webhook: WebhookIn | None = Field(None, description="absent: stream and history only")


class LevelOut(BaseModel):
    name: str
    threshold: float
    clear: float


class SubscriptionOut(BaseModel):
    id: str
    name: str
    zone_id: str
    metric: str
    unit: str = Field(description="what the values count: devices, persons, or per m²; km/h (traffic_speed)")
    expansion: float
    levels: list[LevelOut]
    min_windows: int
    confidence: float
    webhook_url: str | None
    secret: str | None = Field(None, description="the generated webhook secret, shown once at creation")
    created_at: str


class SubscriptionList(BaseModel):
    subscriptions: list[SubscriptionOut]


class EventOut(BaseModel):
    id: str
    subscription_id: str
    zone_id: str
    window_start: str
    kind: str = Field(description="raised, lowered or cleared")
    level_before: str
    level_after: str
    metric: str
    value: float = Field(description="the released unbiased estimate in the metric's unit")
    sigma: float
    lo: float = Field(description="95% interval")
    hi: float
    threshold: float = Field(description="the threshold (raised) or clear value (lowered, cleared) crossed")
    probability: float = Field(description="P(true value > threshold) given the estimate and σ "
                               "(normal approximation); P(true value < threshold) for traffic_speed")
    created_at: str


class EventList(BaseModel):
    events: list[EventOut]


class DeliveryOut(BaseModel):
    subscription_id: str
    event_id: str
    window_start: str
    status: str = Field(description="pending (being retried) or dead (expired)")
    attempts: int
    last_status: int | None
    last_error: str | None


class DeliveryList(BaseModel):
    deliveries: list[DeliveryOut]
