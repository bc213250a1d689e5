"""The user's scenario file: its contract (`Scenario`, `ScenarioError`), loading it
like pytest collects a test file, loading it within a time limit (bounded_load) and KernelBench
problem files adapted to the contract. May import: torch, `perfbench.stats`, `perfbench.results`.
"""
