"""The data engine: what a cycle learns from the last ones' failures.

Failures found in evaluations, fleet triggers and shadow mode steer the next collection (:mod:`.plan`), become
scenarios of their own (:mod:`.generate`) and routes of the regression suite (:mod:`.regression`).
"""
