"""Profiling instruments, each in its own pass or at a measured cost (measurement rule 5).

Modules (import the one you need; nothing here runs at import):

- `torch_trace.profile_workload`: a separate torch.profiler pass per point after timing, writing
  `RUN_DIR/traces/<label>.json` (Perfetto / chrome://tracing) and `RUN_DIR/tb/<label>/` for the
  torch-tb-profiler plugin: `tensorboard --logdir RUN_DIR/tb` (deprecated upstream; nothing
  depends on it).
- `trace_summary.summarize_trace`: the plugin's overview panes from the trace alone: step time
  split into device compute / copies / runtime / data wait / CPU-side / idle, top operators, top
  kernels with tensor-core use, peak memory and the allocation timeline.
- `nvtx_ranges`: NVTX ranges (torch.cuda.nvtx on CUDA, else the `nvtx` package, else nothing),
  per-module ranges via forward hooks, the measured cost of both, and `nsys_command`.
- `gpu_sampler.GpuSampler`: NVML utilisation / memory / SM clock / power / temperature every
  ~50 ms in a thread; with no driver it records why and starts nothing.
- `flamegraph`: py-spy on a running pid, one sampling session -> speedscope JSON + SVG.

NVTX range names (stable: `nsys --nvtx-capture` and timeline searches rely on them):

    <point.label()>/<phase>          one range per phase of a point, phases in order:
                                     build, compile, warmup, measure, profile
    <point.label()>/<phase>/step     one range per step call inside warmup, measure, profile
    <module qualified name>          per module call with --nvtx-modules (`0`, `encoder.fc1`, the
                                     root module by its class name), nested inside the step

e.g. `eager_bs32_t2_amp-off_infer_cuda/measure/step`. `compile` covers the backend's prepare and
the first call (cold start); it is empty for eager. The command that records one point's
steady state in Nsight Systems is `nvtx_ranges.nsys_command(rerun_command, name, label)`:

    nsys profile --trace=cuda,nvtx,osrt --sample=none --cpuctxsw=none --capture-range=nvtx
      --nvtx-capture=<label>/measure --capture-range-end=stop
      --env-var=NSYS_NVTX_PROFILER_REGISTER_ONLY=0 --force-overwrite=true -o NAME
      perfbench run SCENARIO --set ... --nvtx

Run-folder layout written by this package (folder names in `perfbench.results.layout`; paths in results
are relative to the run folder):
`traces/<NNN>-<label>.json`, `tb/<NNN>-<label>/*.pt.trace.json`, `gpu/<point_id>.csv`,
`flamegraphs/flamegraph.svg`, `flamegraphs/profile.speedscope.json`, `flamegraphs/py-spy.log`.

Where the results land (`instruments` is the glue the harness calls):

- row `extra["profile"]` (--profile): profile_workload's dict (trace, tb_dir, tb_logdir,
  top_ops_cpu, top_ops_device, summary = summarize_trace), or {"error": ...}.
- row `extra["gpu"]` (CUDA points): GpuSampler.summary() + "timeline": "gpu/<point_id>.csv"
  (CSV columns t, util_pct, mem_used_bytes, sm_clock_mhz, power_w, temp_c), or {"unavailable"}.
- row `extra["input_bound_hint"]`: plain words when data wait > 30% and GPU utilisation < 50%.
- row `extra["nvtx_overhead"]` (--nvtx): measure_nvtx_overhead's dict; `extra["nsys_command"]`.
- run.json `profiling` (switches, NVTX backend, GPU sampler availability or why not),
  `flamegraph` (FlameGraphRecorder.result() + a note that times were taken under py-spy),
  `nvtx_overhead` (per point, and max_overhead_pct_direct: the figure for the < 1% rule).
"""
