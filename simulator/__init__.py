"""The simulated city: a deterministic generator of realistic pings and their ground truth.

``generate(config, settings)`` builds a run without Kafka (messages + :class:`GroundTruth`);
``produce(settings, simulation)`` sends it to the pings topic. ``hexpulse simulate`` is the CLI.
"""

from simulator.config import MAX_BATCH_SPAN_MS, SimConfig
from simulator.exceptions import ProduceError, SimulatorConfigError, SimulatorError
from simulator.generate import Simulation, generate
from simulator.ground_truth import GroundTruth
from simulator.places import CORRIDORS, SCENIC_AREAS, STADIUM, NamedArea, areas_geojson
from simulator.producer import ProduceReport, produce
from simulator.roads import Corridor

__all__ = [
    "CORRIDORS",
    "MAX_BATCH_SPAN_MS",
    "SCENIC_AREAS",
    "STADIUM",
    "Corridor",
    "GroundTruth",
    "NamedArea",
    "ProduceError",
    "ProduceReport",
    "SimConfig",
    "Simulation",
    "SimulatorConfigError",
    "SimulatorError",
    "areas_geojson",
    "generate",
    "produce",
]
