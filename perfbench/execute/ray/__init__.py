"""`--executor ray`: each comparison group is one streaming Ray task; the driver's
loop, the task run inside a Ray worker, and the executor that starts or joins a cluster. May
import: the rest of perfbench.execute and everything below it; Ray itself only inside functions
(an optional extra).
"""
