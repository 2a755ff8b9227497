"""Crowd-safety alerts (issue #13): subscriptions on registered zones, a state machine with levels
and hysteresis over released zone estimates, signed webhook delivery. Reads released data only
through ``releases``; see docs/ALERTS.md."""
