"""Where the history store is, and the gate's default: constants the command line and the
recording side share (the command's arguments live in perfbench.cli.history_args)."""

ENV_VAR = "PERFBENCH_HISTORY"  # a path or a database URL; "off" disables recording
DEFAULT_GATE_PCT = 5.0  # --fail-on-regression without a value
