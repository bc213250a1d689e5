"""Who measures the comparison groups of a run, and where: the `Executor` interface,
the row builders both executors use (rows), the runner that owns the run folder, the local
executor's worker process, `--repeat`, and `ray/` (the Ray executor, its driver loop and the task
that runs inside a Ray worker). May import: everything below it (stats, results, scenario,
backends, profiling, measure, plan); never analysis/, report/, advisor/ or cli/.
"""
