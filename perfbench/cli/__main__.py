"""`python -m perfbench.cli ...`: the same as the `perfbench` command."""

from perfbench.cli.main import main

raise SystemExit(main())
