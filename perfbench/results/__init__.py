"""What a run leaves behind and the key that names it: the sweep axes and the frozen
`Point` (axes), one results `Row` and its CSV round trip, the keys of its `extra` column (facts),
the run folder (`RunDir`, layout), and the environment and hardware facts recorded with it. May
import: `perfbench.stats` and the standard library; nothing that measures, plans or prints (the
measuring worker builds rows too).
"""
