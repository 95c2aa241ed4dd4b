"""README.md's package size is the size of the package `sam build` makes now (built again here with
the Makefile's build-ServicesFunction, as bench/readme.py measures it)."""

from __future__ import annotations

import subprocess

import pytest

from bench import readme

LAMBDA_PYTHON = subprocess.run(["make", "-s", "--no-print-directory", "lambda-python"], cwd=readme.ROOT,
                               capture_output=True, text=True).stdout.strip()


@pytest.mark.skipif(not LAMBDA_PYTHON, reason="Python 3.13 (the Lambda runtime's) is not installed")
def test_the_package_size_is_the_built_package():
    unpacked, zipped = readme.measure_package()
    assert readme.blocks(readme.README.read_text())["package-size"] == readme.package_size(unpacked, zipped), \
        f"built: {unpacked} bytes, {zipped} zipped; run `python -m bench.readme --only package-size`"
