"""Package-level checks: public names, typing marker, layering (no import points upward)."""

from __future__ import annotations

import ast
import pathlib

import fairmt_opt

PKG = pathlib.Path(fairmt_opt.__file__).parent

# layer of each top-level part of the package; an import may only point to the same or a lower one
LAYER = {
    "_": 1, "reference": 1, "testing": 1, "simplex": 1, "qp": 1, "certificates": 1,
    "dual": 1, "head": 1,
    "fairness": 2,
    "torch": 3, "integrations": 3,
    "datasets": 4, "studies": 4, "cli": 4, "plots": 4, "__main__": 4,
}


def _layer(parts: list[str]) -> int:
    head = parts[0].removesuffix(".py")
    if head.startswith("_") and head != "__main__":
        return 1
    return LAYER.get(head, 4)


def test_public_names_exist() -> None:
    for name in fairmt_opt.__all__:
        assert hasattr(fairmt_opt, name), name


def test_py_typed_marker() -> None:
    assert (PKG / "py.typed").is_file()


def test_no_import_points_upward() -> None:
    bad = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).parts
        own = _layer(list(rel))
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                if node.level == 0 and node.module and node.module.startswith("fairmt_opt"):
                    targets.append(node.module)
                elif node.level > 0:
                    pkg = list(rel[:-1])
                    base = pkg[: len(pkg) - (node.level - 1)]
                    mod = ".".join(["fairmt_opt", *base, *(node.module or "").split(".")])
                    targets.append(mod.rstrip("."))
            elif isinstance(node, ast.Import):
                targets += [a.name for a in node.names if a.name.startswith("fairmt_opt")]
            for t in targets:
                parts = t.split(".")[1:]
                if not parts:
                    continue
                if _layer(parts) > own:
                    bad.append(f"{'/'.join(rel)} imports {t}")
    assert not bad, bad
