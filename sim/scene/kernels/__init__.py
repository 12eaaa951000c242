"""The scene's compiled readers (numba, no allocation, one scenario ``b`` per call), run in order by ``view``:
``route`` (the ego's progress along its route), ``occupancy`` (the lanes each actor occupies), ``junction`` (who
approaches the ego's junction and who goes first), ``planner`` (the privileged facts: the actor in the ego's path,
the stop line and whether to stop, giving way, offsets to pass obstacles or keep right, the curbside stop, the
siren), ``infractions`` (Leaderboard infractions and how the route ends), on ``geometry`` (lane lookups and
oriented boxes). Each reads a :class:`~sim.scene.records.Scene` and the compiled map only, and writes the scene's
occupancy, facts, junction, outcome and located records."""
