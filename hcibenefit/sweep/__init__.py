"""The nightly sweep's own pieces: waivers, the run model, history and the comparison of runs.

Collecting facts is operations.sweep's job, judging them is checks.evaluate's, and rendering is
report.sweep's; this package holds what ties a run together and what outlives it.
"""
