"""Statistics with no torch and no run folder: Student's t, the paired speedup
estimate from interleaved rounds, the verdicts (faster, slower, same, inconclusive, no change) and
the run-to-run ratio with repetitions as the unit. Pure functions over numbers. May import: the
standard library only (nothing else in perfbench), so anything may use it.
"""
