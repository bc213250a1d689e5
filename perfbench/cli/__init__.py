"""The `perfbench` command: every argparse parser, everything printed to the terminal
(progress lines, captured output, tables) and the commands themselves. The only package that
imports argparse or prints. May import anything in perfbench; nothing imports it (the console
script `perfbench` is `perfbench.cli.main:main`; `python -m perfbench.cli` runs it too).
"""
