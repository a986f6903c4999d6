"""Execute a TP notebook headless, with the solutions pulled in the way `%load` does.

    python tools/run_notebook.py notebooks/vae_tp.ipynb --out build/run [--notebook-only]

In Jupyter, a student uncomments `# %load ../solutions/decoder_vae.py` and runs the cell:
IPython replaces the whole cell with `# %load ../solutions/decoder_vae.py` followed by the
file's contents. A notebook executed headless never does that (the magic only sets the next
input of a front end), so `load_solutions` performs the same substitution. The executed
notebook, an HTML copy, every figure (as PNG, via VAE_TP_FIGURES) and the trained weights go
to --out. With --notebook-only, only the executed notebook is written: no figure files, no
HTML, the run a student or nbval makes (bench/budgets.py times it).
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

import nbformat

from vaetp.grading.markers import LOAD_LINE_RE as LOAD_LINE


def load_solutions(nb: nbformat.NotebookNode, notebook_dir: Path) -> nbformat.NotebookNode:
    """Return a copy of `nb` where each cell with a `%load PATH` line (commented or not) is
    replaced by `# %load PATH` plus the file, PATH being relative to the notebook's folder."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        match = LOAD_LINE.search(cell.source)
        if match is None:
            continue
        path = notebook_dir / match.group(1)
        if not path.exists():
            raise FileNotFoundError(f"cell {cell.get('id')}: %load {match.group(1)} -> {path} does not exist")
        cell.source = f"# %load {match.group(1)}\n" + path.read_text(encoding="utf-8")
    return nb


def execute(nb: nbformat.NotebookNode, workdir: Path, timeout: int = 1800,
            allow_errors: bool = False) -> nbformat.NotebookNode:
    """Run every cell in a fresh python3 kernel whose working folder is `workdir`."""
    from nbclient import NotebookClient

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=allow_errors,
                            resources={"metadata": {"path": str(workdir)}})
    client.execute()
    return nb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--out", type=Path, default=Path("build/run"))
    parser.add_argument("--notebook-only", action="store_true",
                        help="write the executed notebook only: no figure files, no HTML copy")
    args = parser.parse_args()

    source = args.notebook.resolve()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    figures = out / "figures"
    if args.notebook_only:
        os.environ.pop("VAE_TP_FIGURES", None)
    else:
        figures.mkdir(exist_ok=True)
        os.environ["VAE_TP_FIGURES"] = str(figures)
    nb = load_solutions(nbformat.read(source, as_version=4), source.parent)
    mode = "fast mode" if os.environ.get("VAE_TP_FAST") else "full run (50 epochs)"
    print(f"Executing {args.notebook} with the solutions loaded, {mode}; output in {out}")
    start = time.perf_counter()
    # The kernel works in the output folder: the trained weights go to OUT/weights/, and
    # nothing next to the notebook (a student's own weights/, say) is touched.
    execute(nb, out)
    seconds = time.perf_counter() - start
    executed = out / source.name
    nbformat.write(nb, executed)
    if args.notebook_only:
        print(f"Done in {seconds:.0f} s: {executed}")
        return 0
    from nbconvert import HTMLExporter

    html, _ = HTMLExporter().from_notebook_node(nb)
    executed.with_suffix(".html").write_text(html, encoding="utf-8")
    print(f"Done in {seconds:.0f} s: {executed}, {executed.with_suffix('.html').name}, "
          f"{len(list(figures.glob('*.png')))} figures in {figures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
