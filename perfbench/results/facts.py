"""The keys of a results row's `extra` column: one spelling of each, shared by the code that
writes a fact and the code that reads it back (the report, the advisor, compare, history, the
terminal's lines, the parent that combines processes and repetitions).

`extra` stays what it was, a JSON object in results.csv, so run folders written before this module
read back unchanged: these constants are the strings that were always written, named, never new
values. A reader that names a key writes `facts.CONTENDED`, not `"contended"`;
tests/results/test_facts.py fails on a fact key typed as a string where a row's `extra` is read.

The constants name top-level keys only. A value that is itself a dict (`profile`, `processes`,
`aa_control`, ...) keeps its own fields as the writer spells them; the comment beside the key says
where they are described. Backend facts that no reader names (the ONNX exporter's, AOTInductor's,
ONNX Runtime's, freezing's) stay literal in their backend: the report's backend-facts section
shows every key it does not know, by its name.

Grouped by the module that writes the key; each comment gives the value's type and unit.
"""

# --- every ok point: the timing facts only `extra` keeps (measure/point.py) -------------------
MEDIAN_CI_MS = "median_ci_ms"  # [low, high] ms: ~95% distribution-free interval of the median
NUMBER = "number"  # int: calls per timed sample
WARMUP_CALLS = "warmup_calls"  # int: calls before the first timed sample
STOP_REASON = "stop_reason"  # str: why sampling stopped (budget, max reps, stable ...)
PREPARE_S = "prepare_s"  # float s: the backend's prepare (compile, export, rewrite) time
FLOPS_PER_STEP = "flops_per_step"  # int | None: FLOPs of one step, None when not counted
PEAK_MEM_KIND = "peak_mem_kind"  # str: what the peak_mem_bytes column measured (cpu_rss_growth ...)
NOISE_WARNING = "noise_warning"  # str: set when IQR/median is large (measure/timing.py)
# dict: {"weights": int bytes, "weight_tensors": int, "batch": int bytes | None,
# "last_level_cache": int bytes | None} (measure/step_bytes.py); the advisor's bound check reads it
STEP_BYTES = "step_bytes"
TIMED_CALLS = "timed_calls"  # int: timed calls, DataLoader points only
THROUGHPUT_BASIS = "throughput_basis"  # str: why throughput is mean-based (DataLoader points)

# --- a point whose FLOPs could not be counted (measure/flops.py flops_missing) ----------------
FLOPS_UNKNOWN = "flops_unknown"  # str: the ops the counter has no formula for (a report hint)
FLOPS_UNKNOWN_OPS = "flops_unknown_ops"  # list[str]: the same ops, one per item
FLOPS_ERROR = "flops_error"  # str: "Type: message" when counting failed otherwise

# --- a failed point (measure/point.py error_columns; execute/ray/task.py localises paths) ------
MODEL_ERROR = "model_error"  # True: the scenario's model cannot be built; the sweep stops
TRACEBACK = "traceback"  # str: the end (4000 chars) of an unexpected exception's traceback

# --- what other processes took while the point was timed (measure/contention.py as_dict) -------
OTHERS_CORES = "others_cores"  # float cores: other processes' CPU over the timed wall time
STEAL_FRAC = "steal_frac"  # float 0..1: hypervisor steal over wall time x CPUs
PSI_SOME_FRAC = "psi_some_frac"  # float 0..1 | None: /proc/pressure/cpu "some" stall share
NIVCSW_PER_S = "nivcsw_per_s"  # float /s: involuntary context switches of this process
OWN_THREADS_CORES = "own_threads_cores"  # float cores: the scenario's own extra threads
CONTENDED = "contended"  # bool: the same flag as the `contended` column, kept beside its reasons
# str: "; "-joined reasons the point was contended ("" for none); profiling/gpu_throttle.py
# appends "GPU throttled: ..."
CONTENTION = "contention"

# --- what the point wrote to stdout/stderr (measure/worker_output.py; execute/scenario_capture.py
# for the output of importing the scenario) ------------------------------------------------------
OUTPUT_LOG = "output_log"  # str: the log's path, relative to the run folder
OUTPUT_BYTES = "output_bytes"  # int bytes written
OUTPUT_LINES = "output_lines"  # int lines written
OUTPUT_CUT_BYTES = "output_cut_bytes"  # int bytes left out of the log (it is bounded)
PRINTED_DURING_TIMING_BYTES = "printed_during_timing_bytes"  # int bytes printed while timed

# --- a comparison group's rounds (measure/group_timing.py) ------------------------------------
# dict: arms, rounds, period, blocks, stop_reason, timed_s, planned_s[, plan_note]
# (measure/interleave.py Interleaved.summary)
INTERLEAVED = "interleaved"
RECOMPILED_DURING_TIMING = "recompiled_during_timing"  # bool: dynamo compiled while timed
COMPILED_AFTER_BUILD = "compiled_after_build"  # int: graphs compiled after the arms were built
CHANGES = "changes"  # int | None: what the backend changed (Prepared.changes)
CHANGES_WHAT = "changes_what"  # str: what `changes` counts ("rewrites fired" ...)
# dict: {"waited_s", "gave_up", "others_cores", "limit_s"} (measure/quiet.py QuietWait.as_dict),
# with --wait-quiet only
QUIET_WAIT = "quiet_wait"

# --- the group's judgement (measure/group_judge.py; execute/process_runs.py rewrites them when
# processes are combined) -------------------------------------------------------------------------
# dict on the eager row: the A/A control's speedup, ci_low, ci_high, ok, reason and, under
# ESTIMATE, its own estimate record
AA_CONTROL = "aa_control"
SPEEDUP_CI_LEVEL = "speedup_ci_level"  # float 0..1: the level of speedup_ci_low/high
TOO_NOISY = "too_noisy"  # bool: the A/A control failed, so no call is made
# dict: the speedup estimate (stats/two_level.py estimate_record), enough to combine processes
# and repetitions later (execute/process_runs.py, execute/repeat.py)
ESTIMATE = "estimate"
# str: the verdict before the load rule (measure/caveat.py) took an oversubscribed call away
VERDICT_BEFORE_LOAD_RULE = "verdict_before_load_rule"

# --- the parent process (execute/) ------------------------------------------------------------
# dict: count, why, method, between_sd, per_process [{median_ms, speedup, ci_low, ci_high,
# contended}][, lost] (execute/process_runs.py)
PROCESSES = "processes"
WORKER = "worker"  # dict: the Ray worker's host, node, versions, attempt ... (execute/ray/)
# list[float] ms: raw samples, in rows written before the times_ms column existed; moved to the
# column on read (results/row.py)
TIMES_MS = "times_ms"

# --- torch.compile (backends/compile_variants.py, backends/graph_breaks.py) -------------------
COMPILE_MODE = "compile_mode"  # str: the torch.compile mode; its presence marks a compiled point
DYNAMIC_SHAPES = "dynamic_shapes"  # bool: torch.compile's `dynamic` (the shapes=dynamic axis)
GRAPH_BREAKS = "graph_breaks"  # int: graph breaks dynamo's explain found in one forward
GRAPH_BREAK_REASONS = "graph_break_reasons"  # list[str]: their distinct reasons, shortened
GRAPHS = "graphs"  # int: graphs captured in one forward
GRAPH_BREAK_PROBE_S = "graph_break_probe_s"  # float s: the probe's share of prepare time
GRAPH_BREAK_PROBE = "graph_break_probe"  # "shared": the probe of an earlier point was reused

# --- what torch.compile did at run time (backends/compile_facts.py; measure/compile_watch.py
# adds the compiles after the build) ------------------------------------------------------------
COMPILES = "compiles"  # int: compiles dynamo finished
RECOMPILES = "recompiles"  # int: compiles of a frame already compiled (guard failures)
COMPILE_IDS = "compile_ids"  # list[str]: dynamo's compile ids "frame/attempt" (first ones)
# dict: {"state": hit | miss | bypass | none, and the cache counters' deltas}
INDUCTOR_CACHE = "inductor_cache"
COMPILED_WHILE_TIMED = "compiled_while_timed"  # int: compiles after the build
# dict: limit, value, function, where, reason, point_id, fix (compile_watch.LimitHit + FIX)
RECOMPILE_LIMIT = "recompile_limit"

# --- other backends' facts that readers name ---------------------------------------------------
NOTE = "note"  # str: any backend's word on a point where it changed nothing
REWRITES = "rewrites"  # dict[str, int]: fx rewrites fired, by kind (backends/fx_backend.py)
REWRITE_SITES = "rewrite_sites"  # dict[str, list[str]]: where (fx_backend.py)
FOLD_BN_SKIPPED = "fold_bn_skipped"  # str: why BatchNorm was not folded (fx_backend.py)
LINEAR_ACT_IMPL = "linear_act_impl"  # str: which Linear+act implementation ran (fx_backend.py)
LINEAR_ACT_IMPL_WHY = "linear_act_impl_why"  # str: why that one (fx_backend.py)
INT8_IMPL = "int8_impl"  # str: which int8 path ran (backends/int8.py)
INT8_IMPL_WHY = "int8_impl_why"  # str: why that one (int8.py)
INT8_LINEAR_LAYERS = "int8_linear_layers"  # int: Linear layers quantised (int8.py)
# dict: replaced, candidates, ops_in_our_kernels_pct, basis (backends/triton_backend.py)
COVERAGE = "coverage"
# dict[pattern, {candidates, replaced, eager_no_backward, eager_no_kernel}] (triton_backend.py)
PATTERNS = "patterns"
SOFTMAX_DIM_AT_RUN = "softmax_dim_at_run"  # dict: softmax calls routed at run time (triton)
LOSS_CROSS_ENTROPY = "loss_cross_entropy"  # dict: train-step cross-entropy routed (triton)

# --- profiling (profiling/instruments.py finish, note_row; profiling/gpu_throttle.py) ---------
# dict: profile_workload's trace, tb_dir, tb_logdir, summary, top ops ... (--profile)
PROFILE = "profile"
GPU = "gpu"  # dict: GpuSampler.summary() + "timeline": "gpu/<point_id>.csv" (CUDA points)
INPUT_BOUND_HINT = "input_bound_hint"  # str: data wait > 30% and GPU utilisation < 50%
NVTX_MODULES = "nvtx_modules"  # str: why per-module NVTX ranges were not added (--nvtx)
NVTX_OVERHEAD = "nvtx_overhead"  # dict: measure_nvtx_overhead's figures (--nvtx)
NSYS_COMMAND = "nsys_command"  # str: the `nsys profile` command that records this point
SM_CLOCK_MHZ = "sm_clock_mhz"  # [before, after] MHz around the rounds (CUDA)
GPU_THROTTLE_REASONS = "gpu_throttle_reasons"  # list[str]: NVML throttle reasons active
GPU_THROTTLED = "gpu_throttled"  # bool: any was (the row is then contended)
