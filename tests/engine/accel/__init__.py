"""Tests of the compiled steps.  They run wherever numba is installed (CI installs the
``fast`` extra); without it they fail, unless the compiled steps are switched off with
``NNCTL_NUMBA=0``, where they skip."""

import os

import pytest


def require_numba() -> None:
    """Skip the calling test module under ``NNCTL_NUMBA=0``; else import numba, so that a
    missing numba fails the module instead of skipping it."""
    if os.environ.get("NNCTL_NUMBA", "1") == "0":
        pytest.skip("NNCTL_NUMBA=0: the compiled steps are switched off", allow_module_level=True)
    import numba  # noqa: F401
