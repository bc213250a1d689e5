"""The package list, found rather than kept by hand (everything else is in pyproject.toml).

Why here and not in `[tool.setuptools.packages.find]`: kernels/ is installed as
`perfbench_kernels` (`kernels` is an unrelated PyPI package), a package name that no folder has;
find would install it as a top-level `kernels`, and setuptools lets pyproject's `packages`
override setup.py's, so one of the two must hold the whole list.
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["perfbench", "perfbench.*"]), "perfbench_kernels"])
