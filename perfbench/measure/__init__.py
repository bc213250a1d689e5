"""Measuring inside one process: a point's workload (model, batches, knobs), the
correctness check, timing, interleaved rounds of a comparison group and what its arms share,
contention, FLOPs, device ceilings, and the worker's captured output. May import: stats, results,
scenario, backends, profiling; never plan/, execute/ or cli/ (a worker needs none of them).
"""
