"""Errors of the simulated city."""

from hexpulse.errors import ConfigError, HexpulseError


class SimulatorError(HexpulseError):
    """The simulation could not be generated or produced."""


class SimulatorConfigError(SimulatorError, ConfigError):
    """A simulation option is invalid; the message is one sentence naming the option."""


class ProduceError(SimulatorError, ConnectionError):
    """Messages could not be delivered to Kafka (the message names how many and why)."""
