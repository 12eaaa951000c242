"""The embedded world's compiled kernels, one module per concern; :mod:`~sim.embedded.kernels.tick` runs them
in order each step.

Each kernel loops over a range of scenarios (the world runs disjoint ranges on threads; the kernels release
the GIL) with plain loops over each scenario's actors inside. The kernels never allocate, so they are compiled
without numba's reference-counting runtime (``_nrt=False``): with it, taking an array out of the state tuple or
slicing it increments and decrements a shared counter atomically, and those calls took over 80 % of the step
(about 8x slower, and worse with more threads). An allocation added to a kernel fails to compile instead of
silently bringing the runtime back. Small helpers are inlined; the larger parts of a step are functions of their
own (inlining them too ran about 20 % faster but took 2.5 times as long to compile).

Every scenario's update reads and writes only its own rows, in the same order whatever the batch size, so a
scenario's trajectory does not depend on the batch it runs in. Random draws during the run (route choices,
respawns) come from a counter-based hash of the scenario seed, the actor slot and a per-actor counter
(:mod:`~sim.embedded.kernels.draws`).

Actor slots per scenario: ``[0, V)`` vehicles, ``[V, V + P)`` pedestrians, ``[V + P, N)`` static obstacles.

The kernels here move things: ``physics`` (the ego's bicycle and the traffic's IDM), ``lights``, ``traffic``,
``pedestrians``, ``replay`` and ``events``. Each takes the scene (:class:`sim.scene.records.Scene`) and the world's
own state (:class:`sim.embedded.state.State`) side by side. Looking at the scene afterwards is the scene's own
kernels' work (:mod:`sim.scene.kernels.view`: route, occupancy, junction, planner facts, infractions), the same for
every backend; ``tick`` runs them all in order. ``draws`` holds the counter-based random draws.
"""
