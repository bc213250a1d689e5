"""What `perfbench run` will do, resolved before the first point runs: the sweep's
layers (defaults < scenario SWEEP < TOML < --set) and the run plan (points, comparison groups,
skips with reasons, worker environment). May import: stats, results, scenario, backends,
profiling's options and measure's settings (`TimingSettings`, `skip_reason`); never execute/ or
cli/.
"""
