"""Every example in the package's docstrings runs and prints what it says (examples that need data
fetched from outside are marked ``+SKIP`` where they stand)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import blackprop

MODULES = sorted(m.name for m in pkgutil.walk_packages(blackprop.__path__, "blackprop."))


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} docstring examples failed (see above)"
