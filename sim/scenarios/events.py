"""Scenario events: typed situations the world stages on a route, each at its trigger point.

Names and parameters follow the CARLA Leaderboard 2.0 scenario types (``<scenario type="…">`` in route XML). An
event's ``trigger_s_m`` is an arc length along the scenario's route (the same frame as ``start_s_m``); the world
arms the event at reset and sets it off when the ego's route progress reaches the trigger, timing its actors
from the ego's speed then, so that the situation happens to whoever drives the route.

Staged by the embedded world (see :mod:`sim.embedded.staging`):

- :class:`PedestrianCrossing` — a pedestrian crosses the ego's lane ``distance_m`` past the trigger, timed to
  meet the ego there.
- :class:`DynamicObjectCrossing` — the same, from behind a vehicle parked at the curb (a jaywalker the ego cannot
  see coming).
- :class:`VehicleTurningRoutePedestrian` — a pedestrian crosses the lane the ego turns into at the next junction.
- :class:`HardBreakRoute` — a lead vehicle ahead of the ego on its route brakes hard at the trigger.
- :class:`OppositeVehicleRunningRedLight` / :class:`OppositeVehicleTakingPriority` — a vehicle from a crossing
  approach enters the next junction on the route ignoring its red light / stop sign and priority, timed to meet
  the ego in the junction.
- :class:`ParkingCutIn` — a vehicle parked at the ``direction`` curb ``distance_m`` past the trigger pulls out
  into the ego's lane when the ego reaches the trigger.
- :class:`ParkedObstacle`, :class:`Accident`, :class:`ConstructionObstacle` — the ego's lane is blocked
  ``distance_m`` past the trigger (a vehicle parked across most of it; three crashed vehicles; a sign and a taper
  of cones): the ego must pass on the left (the next lane, or the oncoming one) when it is clear. The Leaderboard's
  ``…TwoWays`` variants are these events on roads where the lane to the left is the oncoming one.
- :class:`StaticCutIn` — a vehicle standing in the next lane cuts into the ego's.
- :class:`ControlLoss` — the ego's controls slip on three short stretches of bad road.
- :class:`ParkingCrossingPedestrian` — a pedestrian crosses the ego's lane from in front of a vehicle parked at
  the curb.
- :class:`VehicleOpensDoorTwoWays` — a vehicle parked at the curb has its door open into the ego's lane; the ego
  passes on the oncoming lane when it is clear.
- :class:`HazardAtSideLane` — two slow bicycles ride at the right edge of the ego's lane; the ego keeps behind
  them or passes them with clearance (``HazardAtSideLaneTwoWays``: the same where the lane to the left is the
  oncoming one).
- :class:`EnterActorFlow` — the ego turns onto a road with a flow in the lane it enters and must merge into a
  gap (``EnterActorFlowV2``, ``MergerIntoSlowTraffic``, ``MergerIntoSlowTrafficV2``: the same, slow or in one
  lane); :class:`HighwayExit` — the ego leaves its road across a flow; :class:`HighwayCutIn` — a vehicle joins
  the ego's lane from a side road just in front of it. (The Leaderboard's are highway entries, exits and on-ramps;
  our towns have none, so they happen at junctions.)
- :class:`SequentialLaneChange` (Bench2Drive) — the route changes lanes past the trigger: nothing is staged, the
  route's place is checked.
- :class:`SignalizedJunctionLeftTurn`, :class:`SignalizedJunctionRightTurn`,
  :class:`NonSignalizedJunctionLeftTurn` — a flow of vehicles with the right of way crosses (left turns) or joins
  (right turn) the ego's path at a junction where the route turns; at signalized ones the event sets the lights
  (the ego's and the flow's green) as the Leaderboard's scenarios do.
- :class:`NonSignalizedJunctionRightTurn` — the same flow from the left into the ego's right turn at an
  unsignalized junction; :class:`SignalizedJunctionLeftTurnEnterFlow`, :class:`NonSignalizedJunctionLeftTurnEnterFlow`
  (Bench2Drive) — an oncoming flow turns right into the lane the ego turns left into;
  :class:`InterurbanActorFlow` — the ego turns left off a main road across an oncoming flow;
  :class:`InterurbanAdvancedActorFlow` — the ego turns left onto a main road across one flow and into another;
  :class:`CrossingBicycleFlow` — a flow of bicycles at the lane's edge crosses the ego's turn.
- :class:`VehicleTurningRoute` — a bicycle crosses the lane the ego turns into (moved along its path as crossing
  pedestrians are; a vehicle to hit).
- :class:`BlockedIntersection` — a vehicle stands just past the junction the ego turns through; the ego waits.
- :class:`PriorityAtJunction`, :class:`VanillaSignalizedTurnEncounterGreenLight` — the ego's light held green (the
  rest red) as it gets to the junction; :class:`VanillaSignalizedTurnEncounterRedLight` — the junction all red as
  the ego comes, then its light green; :class:`VanillaNonSignalizedTurn`,
  :class:`VanillaNonSignalizedTurnEncounterStopsign`, :class:`T_Junction` (Bench2Drive) — a turn at an uncontrolled
  junction, at a stop sign, a T junction: nothing is staged, the route's place is checked (the Leaderboard's stage
  nothing either).
- :class:`YieldToEmergencyVehicle` — an emergency vehicle comes from behind; the ego must pull over and let it
  pass (``yield_to_emergency_vehicle`` when it is held up behind the ego).
- :class:`InvadingTurn` — oncoming vehicles cut into the ego's lane; the ego must keep right.
- :class:`ParkingExit` — the ego starts parked at the curb and must pull into its lane through the traffic
  coming from behind.
- :class:`CurbsidePickup`, :class:`CurbsideDropoff` — the robotaxi mission (``Scenario.mission``): stop at the
  curb in a marked zone, with traffic behind, for a dwell time (``missed_curbside_stop`` otherwise).
- :class:`LogReplay` — a recorded scene (fleet logs' trigger moments) replayed reactively or as recorded.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Side = Literal["left", "right"]


def describe(error: ValidationError) -> str:
    """A validation error as ``field.path: message`` clauses joined by ``; `` (for messages naming a file)."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in error.errors())


class _Event(BaseModel):
    """Common fields: where along the route the event goes off, and a name (as route XML gives one)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    trigger_s_m: float = Field(ge=0.0)
    name: str = ""


class PedestrianCrossing(_Event):
    """A pedestrian steps into the road from the ``direction`` side and crosses the ego's lane ``distance_m``
    past the trigger, at ``speed_mps``, timed to be in the lane when the ego gets there."""

    type: Literal["PedestrianCrossing"] = "PedestrianCrossing"
    distance_m: float = Field(default=15.0, gt=0.0)
    direction: Side = "right"
    speed_mps: float = Field(default=1.4, gt=0.0)


class DynamicObjectCrossing(_Event):
    """A pedestrian runs across the ego's lane ``distance_m`` past the trigger from behind a vehicle parked at
    the ``direction`` curb, timed to be in the lane when the ego gets there."""

    type: Literal["DynamicObjectCrossing"] = "DynamicObjectCrossing"
    distance_m: float = Field(default=15.0, gt=0.0)
    direction: Side = "right"
    speed_mps: float = Field(default=2.0, gt=0.0)


class VehicleTurningRoutePedestrian(_Event):
    """A pedestrian crosses the lane the ego turns into at the first junction past the trigger, just beyond the
    junction, timed to be there when the ego comes out of the turn."""

    type: Literal["VehicleTurningRoutePedestrian"] = "VehicleTurningRoutePedestrian"
    speed_mps: float = Field(default=1.4, gt=0.0)


class HardBreakRoute(_Event):
    """A vehicle driving the ego's route ``distance_m`` ahead of the ego's start brakes at ``decel_mps2`` to a
    standstill when the ego reaches the trigger, waits ``hold_s`` and drives on."""

    type: Literal["HardBreakRoute"] = "HardBreakRoute"
    distance_m: float = Field(default=25.0, gt=0.0)
    decel_mps2: float = Field(default=7.0, gt=0.0)
    hold_s: float = Field(default=3.0, ge=0.0)


class OppositeVehicleRunningRedLight(_Event):
    """At the first signalized junction past the trigger, a vehicle from the ``direction`` side runs its red
    light across the ego's path at ``speed_mps``, timed to meet the ego in the junction. Where no signalized
    junction follows the trigger, it does so at the first junction, ignoring its stop sign and priority there (as
    the Leaderboard's scenario does at a junction without lights)."""

    type: Literal["OppositeVehicleRunningRedLight"] = "OppositeVehicleRunningRedLight"
    direction: Side = "left"
    speed_mps: float = Field(default=10.0, gt=0.0)


class OppositeVehicleTakingPriority(_Event):
    """At the first junction past the trigger, a vehicle from the ``direction`` side takes the ego's priority
    (ignores its stop sign, light and yielding) across the ego's path, timed to meet the ego in the junction."""

    type: Literal["OppositeVehicleTakingPriority"] = "OppositeVehicleTakingPriority"
    direction: Side = "right"
    speed_mps: float = Field(default=9.0, gt=0.0)


class ParkingCutIn(_Event):
    """A vehicle parked at the ``direction`` curb ``distance_m`` past the trigger pulls out into the ego's lane at
    the trigger and drives on at up to ``speed_mps``."""

    type: Literal["ParkingCutIn"] = "ParkingCutIn"
    distance_m: float = Field(default=18.0, gt=0.0)
    direction: Side = "right"
    speed_mps: float = Field(default=6.0, gt=0.0)


class ParkedObstacle(_Event):
    """A vehicle parked ``distance_m`` past the trigger, across most of the ego's lane."""

    type: Literal["ParkedObstacle"] = "ParkedObstacle"
    distance_m: float = Field(default=30.0, gt=0.0)


class Accident(_Event):
    """Three crashed vehicles in the ego's lane, starting ``distance_m`` past the trigger."""

    type: Literal["Accident"] = "Accident"
    distance_m: float = Field(default=30.0, gt=0.0)


class ConstructionObstacle(_Event):
    """A construction zone closing the ego's lane ``distance_m`` past the trigger: a sign and a taper of cones."""

    type: Literal["ConstructionObstacle"] = "ConstructionObstacle"
    distance_m: float = Field(default=30.0, gt=0.0)


class StaticCutIn(_Event):
    """A vehicle standing in the lane beside the ego's (on the ``direction`` side, same direction, behind another
    one) ``distance_m`` past the trigger cuts into the ego's lane at the trigger and drives on at up to
    ``speed_mps``."""

    type: Literal["StaticCutIn"] = "StaticCutIn"
    distance_m: float = Field(default=20.0, gt=0.0)
    direction: Side = "right"
    speed_mps: float = Field(default=5.0, gt=0.0)


class ControlLoss(_Event):
    """The ego's controls slip (bad road) on three short stretches, 14, 48 and 74 m past the trigger: a steering
    and an acceleration offset of random sign are added to its commands there; the ego must keep its lane. (The
    Leaderboard's marks the stretches with debris that does not collide, which ours leaves out: our static
    objects collide.)"""

    type: Literal["ControlLoss"] = "ControlLoss"


class ParkingCrossingPedestrian(_Event):
    """A pedestrian steps out just in front of a vehicle parked at the ``direction`` curb ``distance_m`` past the
    trigger and crosses the ego's lane at ``speed_mps``, timed to be in the lane when the ego gets there."""

    type: Literal["ParkingCrossingPedestrian"] = "ParkingCrossingPedestrian"
    distance_m: float = Field(default=12.0, gt=0.0)
    direction: Side = "right"
    speed_mps: float = Field(default=3.0, gt=0.0)


class VehicleOpensDoorTwoWays(_Event):
    """A vehicle parked at the ``direction`` curb ``distance_m`` past the trigger has its door open into the ego's
    lane: the ego must pass on the left (the oncoming lane) when it is clear. (The Leaderboard's door opens when
    the ego is 3 s away; ours stands open from the start, and the oncoming traffic is the background's.)"""

    type: Literal["VehicleOpensDoorTwoWays"] = "VehicleOpensDoorTwoWays"
    distance_m: float = Field(default=50.0, gt=0.0)
    direction: Side = "right"


class HazardAtSideLane(_Event):
    """Two bicycles, 9 m apart, at the right edge of the ego's lane (``0.55 * lane width / 2`` right of its centre)
    ``distance_m`` past the trigger ride along it at ``bicycle_speed_kmh`` (the Leaderboard's unit) from the
    trigger for ``bicycle_drive_distance_m``, then leave: the ego must keep behind them or pass them with
    clearance. (The Leaderboard's bicycles stop at the end of their ride until the ego is past.)"""

    type: Literal["HazardAtSideLane"] = "HazardAtSideLane"
    distance_m: float = Field(default=100.0, gt=0.0)
    bicycle_speed_kmh: float = Field(default=10.0, gt=0.0)
    bicycle_drive_distance_m: float = Field(default=50.0, gt=0.0)


class _Flow(_Event):
    """A flow of ``flow_vehicles`` vehicles at ``flow_speed_mps``, ``source_dist_interval_m`` apart (drawn between
    the two bounds), timed so that the first meets the ego where their paths meet."""

    flow_speed_mps: float = Field(default=8.0, gt=0.0)
    source_dist_interval_m: tuple[float, float] = (20.0, 30.0)
    flow_vehicles: int = Field(default=3, ge=1, le=4)


class EnterActorFlow(_Flow):
    """At the first unsignalized junction past the trigger where the route turns, a flow with the right of way goes
    straight along the road the ego turns onto, in the lane it enters (from the left when it turns right, from the
    right when it turns left): the ego must merge into a gap. (The Leaderboard's ego enters a highway from an
    on-ramp; our towns have none, so it enters a road at a junction.)"""

    type: Literal["EnterActorFlow"] = "EnterActorFlow"
    flow_speed_mps: float = Field(default=10.0, gt=0.0)
    source_dist_interval_m: tuple[float, float] = (20.0, 50.0)


class HighwayExit(_Flow):
    """At the first unsignalized junction past the trigger where the route turns left, a flow with the right of way
    goes straight on in the oncoming lane the ego must cross to leave its road: the ego must cross through a gap.
    (The Leaderboard's ego leaves a highway by an exit on the right, across a flow in the lane beside it that runs
    its way; our towns have no exit lanes, so it leaves by a turn across the oncoming flow.)"""

    type: Literal["HighwayExit"] = "HighwayExit"
    flow_speed_mps: float = Field(default=10.0, gt=0.0)
    source_dist_interval_m: tuple[float, float] = (20.0, 50.0)


class HighwayCutIn(_Event):
    """At the first unsignalized junction past the trigger where the route goes straight, a vehicle from the right
    turns into the ego's lane at ``speed_mps``, taking the ego's priority, timed to get where it joins the ego's
    path when the ego does: the ego must let it in. (The Leaderboard's comes from a highway on-ramp; our towns
    have none, so it joins from a side road.)"""

    type: Literal["HighwayCutIn"] = "HighwayCutIn"
    speed_mps: float = Field(default=8.0, gt=0.0)


class SequentialLaneChange(_Event):
    """The route changes lanes within 200 m past the trigger; nothing else happens (Bench2Drive: the ego must change
    lanes as its route does; its scenario stages nothing and ends 200 m on)."""

    type: Literal["SequentialLaneChange"] = "SequentialLaneChange"


class SignalizedJunctionLeftTurn(_Flow):
    """At the first signalized junction past the trigger where the route turns left, the ego's light and the
    oncoming approach's turn green together (the rest red) and a flow of oncoming vehicles goes straight through:
    the ego must wait for a gap."""

    type: Literal["SignalizedJunctionLeftTurn"] = "SignalizedJunctionLeftTurn"


class SignalizedJunctionRightTurn(_Flow):
    """At the first signalized junction past the trigger where the route turns right, the ego's light and the
    approach from its left turn green together (the rest red) and a flow from the left goes straight into the lane
    the ego turns into: the ego must merge into a gap."""

    type: Literal["SignalizedJunctionRightTurn"] = "SignalizedJunctionRightTurn"


class NonSignalizedJunctionLeftTurn(_Flow):
    """At the first all-way-stop junction past the trigger where the route turns left, a flow of oncoming vehicles
    with the right of way (no stop for them) goes straight through: the ego must stop and wait for a gap."""

    type: Literal["NonSignalizedJunctionLeftTurn"] = "NonSignalizedJunctionLeftTurn"


class NonSignalizedJunctionRightTurn(_Flow):
    """At the first unsignalized junction past the trigger where the route turns right, a flow from the left with
    the right of way goes straight into the lane the ego turns into: the ego must merge into a gap."""

    type: Literal["NonSignalizedJunctionRightTurn"] = "NonSignalizedJunctionRightTurn"


class SignalizedJunctionLeftTurnEnterFlow(_Flow):
    """At the first signalized junction past the trigger where the route turns left, a flow of oncoming vehicles
    turns right into the lane the ego turns into, on a green light; the ego's light is red for 5 s, then green
    too (the junction's others red): the ego must find a gap in the flow (Bench2Drive)."""

    type: Literal["SignalizedJunctionLeftTurnEnterFlow"] = "SignalizedJunctionLeftTurnEnterFlow"


class NonSignalizedJunctionLeftTurnEnterFlow(_Flow):
    """At the first unsignalized junction past the trigger where the route turns left, a flow of oncoming
    vehicles with the right of way turns right into the lane the ego turns into (Bench2Drive)."""

    type: Literal["NonSignalizedJunctionLeftTurnEnterFlow"] = "NonSignalizedJunctionLeftTurnEnterFlow"


class InterurbanActorFlow(_Flow):
    """At the first unsignalized junction past the trigger where the route turns left, a flow of oncoming vehicles
    with the right of way goes straight on: the ego must turn across it through a gap. (The Leaderboard's ego
    turns off an interurban main road, with no stop sign; the junctions of our maps where roads cross without
    lights are all-way stops, where the ego stops first.)"""

    type: Literal["InterurbanActorFlow"] = "InterurbanActorFlow"
    flow_speed_mps: float = Field(default=10.0, gt=0.0)


class InterurbanAdvancedActorFlow(_Flow):
    """At the first unsignalized junction past the trigger where the route turns left (onto a main road), two
    flows go straight on along it: ``flow_vehicles`` from the left across the ego's path and as many from the
    right into the lane the ego turns into: the ego must cross the one and merge into the other."""

    type: Literal["InterurbanAdvancedActorFlow"] = "InterurbanAdvancedActorFlow"
    flow_speed_mps: float = Field(default=10.0, gt=0.0)
    flow_vehicles: int = Field(default=2, ge=1, le=2)


class CrossingBicycleFlow(_Flow):
    """At the first junction past the trigger where the route turns, a flow of bicycles at the right edge of
    their lane goes straight through it across the ego's turn (from ahead when it turns left, from the left when
    it turns right), ignoring lights and priority; at a signalized junction the lights are all red for 5 s, then
    the ego's turns green (the rest red). The Leaderboard's flow rides a bike lane; our maps have none, so the
    bicycles ride the lane's edge."""

    type: Literal["CrossingBicycleFlow"] = "CrossingBicycleFlow"
    flow_speed_mps: float = Field(default=10.0, gt=0.0)
    source_dist_interval_m: tuple[float, float] = (20.0, 50.0)


class VehicleTurningRoute(_Event):
    """A bicycle crosses the lane the ego turns into at the first junction past the trigger, ``distance_m`` past
    the junction's exit, from the right at ``speed_mps``, timed to be in the lane when the ego gets there. The
    world moves it along its path across the road as it moves crossing pedestrians; it is a vehicle (hitting it
    is ``collision_vehicle``, as the Leaderboard counts bicycles)."""

    type: Literal["VehicleTurningRoute"] = "VehicleTurningRoute"
    distance_m: float = Field(default=11.0, gt=0.0)
    speed_mps: float = Field(default=1.8, gt=0.0)


class BlockedIntersection(_Event):
    """A vehicle stands in the route's lane ``distance_m`` past the exit of the first junction past the trigger,
    where the ego only sees it once it turns: the ego must stop (before the junction, not to block it) and wait.
    It stands from when the ego is ``BLOCKER_NOTICE_M`` (40 m) away until ``stop_s`` later, then drives on. (The
    Leaderboard's stands until ``stop_s`` after the ego comes within 13 m, then vanishes.)"""

    type: Literal["BlockedIntersection"] = "BlockedIntersection"
    distance_m: float = Field(default=5.0, gt=0.0)
    stop_s: float = Field(default=10.0, ge=0.0)


class PriorityAtJunction(_Event):
    """At the first signalized junction past the trigger, the ego's light turns green and the junction's others
    red while the ego passes: it should keep going (nothing to provoke)."""

    type: Literal["PriorityAtJunction"] = "PriorityAtJunction"


class VanillaSignalizedTurnEncounterGreenLight(_Event):
    """At the first signalized junction past the trigger where the route turns, the ego's light is green and the
    junction's others red while the ego gets there: it should turn without stopping (Bench2Drive; its light
    turns all red 5 s after the trigger, ours stays green while the ego passes)."""

    type: Literal["VanillaSignalizedTurnEncounterGreenLight"] = "VanillaSignalizedTurnEncounterGreenLight"


class VanillaSignalizedTurnEncounterRedLight(_Event):
    """At the first signalized junction past the trigger where the route turns, every light of the junction is
    red for ``red_s`` from 35 m before it, then the ego's turns green (the rest red): the ego must stop, then go
    (Bench2Drive)."""

    type: Literal["VanillaSignalizedTurnEncounterRedLight"] = "VanillaSignalizedTurnEncounterRedLight"
    red_s: float = Field(default=5.0, gt=0.0)


class VanillaNonSignalizedTurn(_Event):
    """The route turns at an uncontrolled junction (no light, no stop sign) past the trigger; nothing else
    happens (Bench2Drive: the ego must take the turn on its own)."""

    type: Literal["VanillaNonSignalizedTurn"] = "VanillaNonSignalizedTurn"


class VanillaNonSignalizedTurnEncounterStopsign(_Event):
    """The route turns at a stop sign past the trigger: the ego must stop at the line before turning
    (Bench2Drive)."""

    type: Literal["VanillaNonSignalizedTurnEncounterStopsign"] = "VanillaNonSignalizedTurnEncounterStopsign"


class T_Junction(_Event):
    """The route passes a T junction (three approaches) past the trigger; nothing else happens (Bench2Drive: the
    ego drives through it by the junction's rules)."""

    type: Literal["T_Junction"] = "T_Junction"


class YieldToEmergencyVehicle(_Event):
    """An emergency vehicle appears ``distance_m`` behind the ego at the trigger, driving the ego's route at
    ``speed_mps``: the ego must pull over to the right and let it pass."""

    type: Literal["YieldToEmergencyVehicle"] = "YieldToEmergencyVehicle"
    distance_m: float = Field(default=30.0, gt=0.0)
    speed_mps: float = Field(default=14.0, gt=0.0)


class InvadingTurn(_Event):
    """``vehicles`` oncoming vehicles, ``interval_m`` apart, drive into the ego's lane as they come, timed so that
    the first meets the ego ``distance_m`` past the trigger: the ego must keep to the right of its lane.

    ``offset`` is the Leaderboard's (metres): the vehicles drive ``offset + lane width / 2 - 0.7`` m off their
    lane's centre towards the ego."""

    type: Literal["InvadingTurn"] = "InvadingTurn"
    distance_m: float = Field(default=40.0, gt=0.0)
    offset: float = Field(default=0.8, ge=0.0, le=1.5)
    vehicles: int = Field(default=2, ge=1, le=3)
    interval_m: float = Field(default=15.0, gt=5.0)
    speed_mps: float = Field(default=7.0, gt=0.0)


class ParkingExit(_Event):
    """The ego starts in a parking place at the ``direction`` curb (the right one: right-hand traffic; the trigger
    plays no part), between vehicles
    parked ``front_vehicle_distance_m`` ahead and ``behind_vehicle_distance_m`` behind, while ``flow_vehicles``
    vehicles come along its lane from behind (``flow_interval_m`` apart at ``flow_speed_mps``): it must wait for
    a gap to pull into the lane."""

    type: Literal["ParkingExit"] = "ParkingExit"
    direction: Side = "right"
    front_vehicle_distance_m: float = Field(default=12.0, ge=9.0)
    behind_vehicle_distance_m: float = Field(default=8.0, ge=6.0)
    flow_vehicles: int = Field(default=2, ge=0, le=3)
    flow_speed_mps: float = Field(default=8.0, gt=0.0)
    flow_interval_m: float = Field(default=20.0, gt=8.0)


class _Curbside(_Event):
    """A stop of the robotaxi mission ``distance_m`` past the trigger, in a marked curbside zone of the route's
    lane: the ego must come to rest with its centre within ``tolerance_m`` of the stop and its right side within
    ``curb_tolerance_m`` of the curb (the lane's right edge), stand ``dwell_s``, then drive on
    (``missed_curbside_stop`` otherwise). A vehicle follows the ego from the trigger on (traffic behind)."""

    distance_m: float = Field(default=40.0, gt=0.0)
    tolerance_m: float = Field(default=2.0, gt=0.0)
    curb_tolerance_m: float = Field(default=0.5, gt=0.0)
    dwell_s: float = Field(default=5.0, ge=0.0)


class CurbsidePickup(_Curbside):
    """Pick a passenger up at the curb (see :class:`_Curbside`)."""

    type: Literal["CurbsidePickup"] = "CurbsidePickup"


class CurbsideDropoff(_Curbside):
    """Drop a passenger off at the curb (see :class:`_Curbside`)."""

    type: Literal["CurbsideDropoff"] = "CurbsideDropoff"
    dwell_s: float = Field(default=3.0, ge=0.0)


ActorKind = Literal["vehicle", "pedestrian", "cyclist", "static", "other"]


class ReplayActor(BaseModel):
    """One recorded actor of a log replay: its pose (map frame), speed and box at the replay's start, and for a
    non-reactive replay its recorded ``track``: samples ``(time_s, x_m, y_m, yaw_rad, speed_mps)`` with time from
    the replay's start, increasing (an actor that appears later has no pose at the start: its first sample's)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    actor_id: str
    kind: ActorKind
    x_m: float
    y_m: float
    yaw_rad: float
    speed_mps: float = Field(ge=0.0)
    length_m: float = Field(gt=0.0)
    width_m: float = Field(gt=0.0)
    track: tuple[tuple[float, float, float, float, float], ...] = ()

    @model_validator(mode="after")
    def _times_increase(self) -> ReplayActor:
        times = [sample[0] for sample in self.track]
        if any(b <= a for a, b in itertools.pairwise(times)):
            raise ValueError(f"actor {self.actor_id}: track times must increase")
        return self


class LogReplay(_Event):
    """Reactive replay of a recorded scene (a fleet log's, see :mod:`autoloop.fleet.mining`): the recorded actors
    are where the log has them at the replay's start and go on from there in the world (vehicles and cyclists on
    the lane they are on with the world's IDM, pedestrians along their heading at their speed; static and other
    objects, and vehicles off the lanes, stand), and the ego starts at its recorded speed ``ego_speed_mps``. The
    trigger plays no part: the scene is there from the start.

    ``reactive=False`` replays the log as it was: every actor with a ``track`` goes where the record has it, when
    the record has it there (appearing and leaving as it was observed), whatever the ego does; actors without a
    track stand. The ego is the only one who reacts; what it does differently from the log is its own."""

    type: Literal["LogReplay"] = "LogReplay"
    ego_speed_mps: float = Field(default=0.0, ge=0.0)
    reactive: bool = True
    actors: tuple[ReplayActor, ...] = ()


ScenarioEvent = Annotated[
    PedestrianCrossing | DynamicObjectCrossing | VehicleTurningRoutePedestrian | HardBreakRoute
    | OppositeVehicleRunningRedLight | OppositeVehicleTakingPriority | ParkingCutIn | ParkedObstacle | Accident
    | ConstructionObstacle | StaticCutIn | ControlLoss | ParkingCrossingPedestrian | VehicleOpensDoorTwoWays
    | HazardAtSideLane | EnterActorFlow | HighwayExit | HighwayCutIn | SequentialLaneChange
    | SignalizedJunctionLeftTurn | SignalizedJunctionRightTurn
    | NonSignalizedJunctionLeftTurn | NonSignalizedJunctionRightTurn | SignalizedJunctionLeftTurnEnterFlow
    | NonSignalizedJunctionLeftTurnEnterFlow | InterurbanActorFlow | InterurbanAdvancedActorFlow | CrossingBicycleFlow
    | VehicleTurningRoute | BlockedIntersection | PriorityAtJunction | VanillaSignalizedTurnEncounterGreenLight
    | VanillaSignalizedTurnEncounterRedLight | VanillaNonSignalizedTurn | VanillaNonSignalizedTurnEncounterStopsign
    | T_Junction | YieldToEmergencyVehicle | InvadingTurn | ParkingExit | CurbsidePickup
    | CurbsideDropoff | LogReplay,
    Field(discriminator="type"),
]

EVENT_TYPES: dict[str, type[_Event]] = {
    cls.model_fields["type"].default: cls
    for cls in (PedestrianCrossing, DynamicObjectCrossing, VehicleTurningRoutePedestrian, HardBreakRoute,
                OppositeVehicleRunningRedLight, OppositeVehicleTakingPriority, ParkingCutIn, ParkedObstacle,
                Accident, ConstructionObstacle, StaticCutIn, ControlLoss, ParkingCrossingPedestrian,
                VehicleOpensDoorTwoWays, HazardAtSideLane, EnterActorFlow, HighwayExit, HighwayCutIn,
                SequentialLaneChange, SignalizedJunctionLeftTurn, SignalizedJunctionRightTurn,
                NonSignalizedJunctionLeftTurn, NonSignalizedJunctionRightTurn, SignalizedJunctionLeftTurnEnterFlow,
                NonSignalizedJunctionLeftTurnEnterFlow, InterurbanActorFlow, InterurbanAdvancedActorFlow,
                CrossingBicycleFlow, VehicleTurningRoute, BlockedIntersection, PriorityAtJunction,
                VanillaSignalizedTurnEncounterGreenLight, VanillaSignalizedTurnEncounterRedLight,
                VanillaNonSignalizedTurn, VanillaNonSignalizedTurnEncounterStopsign, T_Junction,
                YieldToEmergencyVehicle, InvadingTurn, ParkingExit, CurbsidePickup,
                CurbsideDropoff, LogReplay)
}
"""Every staged event type by its Leaderboard name."""
