"""The scene: the contract between simulator backends.

A backend (the embedded world, a CARLA client, a log replay) fills a :class:`~sim.scene.records.Scene` each step:
the ego, the actors, the lights, the route and mission, over the map's lane graph. Everything that only reads the
world is written here once, as functions of the scene and the map:

- ``records``: the scene's typed structure-of-arrays records; ``codes`` and ``params``: the codes and rules they use;
- ``kernels``: the compiled readers: where the ego is on its route (``route``), who comes to its junction
  (``junction``), the privileged facts the expert plans with (``planner``), infractions and the route's outcome
  (``infractions``), on the shared ``geometry``;
- ``observation``: what a driver sees, a BEV raster (``bev`` on ``raster``) and a state vector.
"""
