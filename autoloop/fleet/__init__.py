"""Fleet logs: importers for real driving logs (Argoverse 2) and their validated, idempotent ingest."""

from autoloop.fleet.av2 import read_forecasting_scenario, read_log, read_map, read_sensor_log
from autoloop.fleet.ingest import IngestReport, Quarantined, ingest
from autoloop.fleet.tables import FleetLogError

__all__ = ["FleetLogError", "IngestReport", "Quarantined", "ingest", "read_forecasting_scenario", "read_log",
           "read_map", "read_sensor_log"]
