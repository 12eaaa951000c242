"""A backend as the scene's readers see it: the scene of a batch, the map it is on and the rules it runs by.

The observation (:class:`sim.scene.observation.Observer`) and the privileged expert read a backend through this
protocol only, so that any backend that fills a :class:`~sim.scene.records.Scene` can be observed and driven."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from sim.geometry import FloatArray
from sim.maps import LaneGraph
from sim.maps.compiled import MapArrays
from sim.scene.params import Params
from sim.scene.records import Ego, Route, Scene


class SceneSource(Protocol):
    """What a backend shows its readers (the embedded :class:`sim.embedded.world.World` is one)."""

    scene: Scene
    map: LaneGraph
    arrays: MapArrays
    params: Params
    batch_size: int

    @property
    def ego(self) -> Ego: ...

    @property
    def progress_s(self) -> FloatArray: ...

    @property
    def lateral_m(self) -> FloatArray: ...

    @property
    def route_xy(self) -> FloatArray: ...

    @property
    def route_s(self) -> FloatArray: ...


def route_xy(route: Route) -> FloatArray:
    """``(B, R, 2)`` route polylines (points past each route's ``n`` repeat its last point)."""
    return np.stack([route.x_m, route.y_m], axis=-1)


def route_s(route: Route) -> FloatArray:
    """``(B, R)`` the arc length of each route point."""
    k = np.minimum(np.arange(route.x_m.shape[1])[None, :], route.n[:, None] - 1)
    s: FloatArray = k * route.ds_m[:, None]
    return s


class SceneViews:
    """The :class:`SceneSource` views every backend derives the same way from its ``scene``."""

    scene: Scene

    @property
    def ego(self) -> Ego:
        return self.scene.ego

    @property
    def progress_s(self) -> FloatArray:
        return self.scene.route.progress_m

    @property
    def lateral_m(self) -> FloatArray:
        return self.scene.route.lateral_m

    @property
    def route_xy(self) -> FloatArray:
        """``(B, R, 2)`` route polylines (points past each route's ``n`` repeat its last point)."""
        return route_xy(self.scene.route)

    @property
    def route_s(self) -> FloatArray:
        """``(B, R)`` arc length of the route points."""
        return route_s(self.scene.route)
