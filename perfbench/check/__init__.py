"""The sanity ladder (`perfbench check`): six rungs that catch a broken scenario in seconds,
before any compute is spent timing it.

- `context`: what every rung shares (context, result, seeded model and batch, comparisons);
- `rungs`: rungs 1-2 (shapes and train/eval behaviour, loss at initialisation);
- `training`: rungs 3-5 (overfit one batch, checkpoint round trip, determinism);
- `ladder`: rung 6 (the chosen backends agree with eager) and the orchestration that runs them in order.
"""
