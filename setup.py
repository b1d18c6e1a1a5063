"""Packages: corpusforge* found as usual, plus the trainer/ folder under the import name `corpusforge_trainer`
(a bare `trainer` belongs to Coqui's PyPI package). Everything else is in pyproject.toml, which cannot both find
packages and map a folder to another name."""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["corpusforge*"]) + ["corpusforge_trainer"])
