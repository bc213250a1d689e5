"""Where a run folder keeps its artefacts: one name per folder, written by the profiling modules
and read by the report. Paths stored in results and run.json are relative to the run folder
(`traces/007-<label>.json`), so a moved or copied run folder still opens.

Kept apart from `rundir` (which reads results.csv with pandas) so the measuring worker, which
writes traces and GPU timelines, imports only these names.
"""

from __future__ import annotations

RESULTS_CSV = "results.csv"  # one row per point, fsynced as each point ends
RUN_JSON = "run.json"  # what ran, where, with which settings
REPORT_HTML = "report.html"
TRACES = "traces"  # torch.profiler Chrome/Perfetto JSON, one per profiled point
TB = "tb"  # TensorBoard logs (torch-tb-profiler), one subfolder per profiled point
GPU = "gpu"  # NVML sampler timelines, `<point_id>.csv`
FLAMEGRAPHS = "flamegraphs"  # py-spy over the sweep: SVG, speedscope JSON, py-spy.log
ARTEFACT_DIRS = (TRACES, TB, GPU, FLAMEGRAPHS)
