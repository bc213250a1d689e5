"""Reading finished runs against each other: `perfbench compare` (the ratchet: the
change of every matched point between two runs, with an interval and a gate). May import:
stats, results, report's data readers and views; never execute/ or cli/. Prints nothing.
"""
