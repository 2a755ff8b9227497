"""hexpulse shared plumbing: settings, errors, logging, the ClickHouse store, Kafka admin, the CLI."""

__version__ = "0.1.0"
