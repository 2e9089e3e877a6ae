"""Execute the Python code blocks of every tutorial (docs/tutorials/*.md), of the comparison
page (docs/comparison.md, whose measurements are printed by the run), of the quickstart and of
the architecture page (its example proxy), page by page.

The blocks of one page run in order in one namespace, as a reader would run them. A page whose
blocks need a missing optional package is skipped with the reason, never passed silently.
"""

from __future__ import annotations

import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"
PAGES = [*sorted((DOCS / "tutorials").glob("*.md")), DOCS / "comparison.md", DOCS / "quickstart.md",
         DOCS / "architecture.md"]
OPTIONAL = {"cvxpy", "torch", "fairlearn", "pandas", "matplotlib", "torchjd", "LibMTL"}
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)


def code_blocks(page: pathlib.Path) -> list[str]:
    """The ```python blocks of a Markdown page (other languages, e.g. bash, are not run)."""
    return FENCE.findall(page.read_text(encoding="utf-8"))


def test_every_tutorial_has_code() -> None:
    assert PAGES, "no tutorial found"
    for page in PAGES:
        assert code_blocks(page), f"{page.name} has no python block"


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_tutorial_runs(page: pathlib.Path, tmp_path: pathlib.Path,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # files a tutorial writes land in a temporary folder
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict[str, object] = {"__name__": f"tutorial_{page.stem}"}
    for i, block in enumerate(code_blocks(page)):
        code = compile(block, f"{page.name}[block {i}]", "exec")
        try:
            exec(code, namespace)
        except ModuleNotFoundError as exc:  # an optional extra of fairmt_opt is not installed
            if exc.name in OPTIONAL:
                pytest.skip(f"{page.name} needs the optional package {exc.name}")
            raise


def test_api_reference_rewrites_rst_math_and_roles() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("griffe_rst", DOCS / "griffe_rst.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    doc = ("Solves\n\n.. math::\n\n    \\min_x f(x)\n    + g(x)\n\nwith :math:`x \\ge 0`, "
           "see :func:`~fairmt_opt.certify_simplex_qp`.\n\nMore text.")
    out = mod.rst_to_markdown(doc)
    assert "$$\n\\min_x f(x)\n+ g(x)\n$$" in out
    assert "$x \\ge 0$" in out and "`fairmt_opt.certify_simplex_qp`" in out
    assert ":math:" not in out and ".. math::" not in out and out.endswith("More text.")


PUBLIC = ["fairmt_opt", "fairmt_opt.simplex", "fairmt_opt.qp", "fairmt_opt.certificates",
          "fairmt_opt.reference", "fairmt_opt.fairness", "fairmt_opt.torch",
          "fairmt_opt.torch.proxies", "fairmt_opt.datasets", "fairmt_opt.studies",
          "fairmt_opt.testing.strategies", "fairmt_opt.testing.qp_strategies",
          "fairmt_opt.testing.fairness_strategies"]


def test_api_reference_documents_every_public_name(tmp_path: pathlib.Path) -> None:
    import importlib
    import subprocess
    import sys

    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    root = DOCS.parent
    site = tmp_path / "site"
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                          "--site-dir", str(site)], cwd=root, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    html = "".join(p.read_text(encoding="utf-8") for p in (site / "api").rglob("*.html"))
    ids = set(re.findall(r'id="([A-Za-z_.0-9]+)"', html))
    missing = []
    for name in PUBLIC:
        try:
            mod = importlib.import_module(name)
        except ImportError:  # an optional extra (hypothesis, torch) is missing
            continue
        missing += [f"{name}.{n}" for n in getattr(mod, "__all__", []) if f"{name}.{n}" not in ids]
    assert not missing, f"public names without an API entry: {missing}"



CALL = re.compile(r"\b(FairMT|make_method|FairnessConstraint|TaskLosses|QPSolver|DualAscent)\(")


def call_keywords(text: str) -> list[tuple[str, str]]:
    """``(function, keyword)`` for every keyword argument of the calls of :data:`CALL` in
    ``text`` (arguments of nested calls belong to those calls)."""
    found = []
    for m in CALL.finditer(text):
        depth, top, pos = 1, [], m.end()
        while pos < len(text) and depth:
            ch = text[pos]
            depth += ch in "([{"
            depth -= ch in ")]}"
            if depth == 1 and ch not in ")]}":
                top.append(ch)
            pos += 1
        args = "".join(top)
        found += [(m.group(1), kw) for kw in re.findall(r"(?:^|,)\s*(\w+)\s*=(?!=)", args)]
    return found


def test_documented_keywords_exist() -> None:
    """Every ``FairMT(name=...)``, ``make_method(name=...)`` (and the other parts) written in the
    documentation or the README names a parameter that exists (or a key of ``OPTIONS``)."""
    import inspect

    pytest.importorskip("torch")
    import fairmt_opt
    import fairmt_opt.torch as ft

    accepted = {
        "make_method": set(ft.OPTIONS),
        **{name: set(inspect.signature(getattr(ft, name)).parameters)
           for name in ("FairMT", "FairnessConstraint", "TaskLosses", "QPSolver")},
        "DualAscent": set(inspect.signature(fairmt_opt.DualAscent).parameters),
    }
    assert ("FairMT", "dual") in call_keywords("FairMT(t, 2, c=F(a, mu=1), dual=D(eta=0))")
    assert ("FairMT", "mu") not in call_keywords("FairMT(t, 2, c=F(a, mu=1), dual=D(eta=0))")
    pages = [*sorted(DOCS.rglob("*.md")), DOCS.parent / "README.md"]
    wrong = sorted({f"{page.name}: {fn}({kw}=...)" for page in pages
                    for fn, kw in call_keywords(page.read_text(encoding="utf-8"))
                    if kw not in accepted[fn]})
    assert not wrong, f"documented keywords that do not exist: {wrong}"
