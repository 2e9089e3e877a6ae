"""pytest (doctests of this package): an adapter whose host library is not installed is not
collected, so ``--doctest-modules`` does not fail on a missing optional extra; the adapters'
tests skip with the reason in that case."""

from __future__ import annotations

import importlib.util


def _missing(name: str) -> bool:
    return importlib.util.find_spec(name) is None


collect_ignore = [f"{module}.py" for module, host in (("torchjd", "torchjd"), ("libmtl", "LibMTL"))
                  if _missing(host) or _missing("torch")]
