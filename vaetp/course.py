"""The master's parameters cell: the one place the TP's sizes come from.

The master notebook (source/vae/vae_tp.ipynb) has a code cell with the id `parameters`:
`name = <integer expression>` lines (`latent_dim = 2`, `original_dim = 28 * 28`, ...). The
student's check cells read them from the kernel's globals; the grader reads them from the master
(never from a student's copy, `vaetp.grading.execute`); the generator writes the stored outputs
that show sizes from them (`tools/generate.py`); the tests build their fixtures from them.

`with_parameters` is the instructor's edit done by code: the tests use it to make variants of
the master (`latent_dim = 10`, `intermediate_dim = 256`) and grade them.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

PARAMETERS_CELL = "parameters"


def parameters_cell(nb: Any) -> Any:
    """The master's parameters cell (an nbformat cell)."""
    cell = next((c for c in nb.cells if c.get("id") == PARAMETERS_CELL), None)
    if cell is None:
        raise RuntimeError(f"the master has no cell with id '{PARAMETERS_CELL}': the TP's sizes "
                           "are read from it (see docs/instructor.md, 'To change an exercise')")
    return cell


def parameters_of(nb: Any) -> dict[str, int]:
    """`name = <integer expression>` assignments of the notebook's parameters cell (products,
    sums and differences of integers; other lines, such as lists, are left out)."""
    found: dict[str, int] = {}
    for node in ast.parse(parameters_cell(nb).source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            value = _integer(node.value)
            if value is not None:
                found[node.targets[0].id] = value
    return found


def master_parameters(master: Path) -> dict[str, int]:
    """The parameters of the master notebook at `master`."""
    import nbformat

    return parameters_of(nbformat.read(master, as_version=4))


def with_parameters(nb: Any, **values: int) -> Any:
    """A copy of `nb` whose parameters cell sets each `name = value` (the rest of each line, a
    comment, is kept). A name that the cell does not assign is an error: a misspelt size must
    not pass unnoticed."""
    import copy

    nb = copy.deepcopy(nb)
    cell = parameters_cell(nb)
    for name, value in values.items():
        pattern = re.compile(rf"^{re.escape(name)}\s*=\s*[^#\n]*?(\s*(#.*)?)$", re.MULTILINE)
        source, count = pattern.subn(lambda m: f"{name} = {int(value)}{m.group(1)}", cell.source)
        if count != 1:
            raise KeyError(f"the parameters cell has no line `{name} = ...`")
        cell.source = source
    if {k: parameters_of(nb)[k] for k in values} != {k: int(v) for k, v in values.items()}:
        raise ValueError(f"could not set {values} in the parameters cell")
    return nb


def _integer(node: ast.AST) -> int | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Add, ast.Sub)):
        left, right = _integer(node.left), _integer(node.right)
        if left is None or right is None:
            return None
        return {ast.Mult: left * right, ast.Add: left + right, ast.Sub: left - right}[type(node.op)]
    return None
