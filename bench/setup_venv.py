"""Create the benchmark's own environment: PyTorch and JAX, which the course does not need.

    python bench/setup_venv.py .venv .venv-bench

The new venv sees the course venv's packages (Keras, TensorFlow, vaetp, Jupyter) through a
`.pth` line, so that the bench runs the course's own code on the JAX backend and its PyTorch
peer without a second copy of TensorFlow, and installs only what it adds, pinned to the
versions the course venv already has (NumPy, ml_dtypes...). torch==2.13.0 is the CPU build.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PACKAGES = ["torch==2.13.0", "jax==0.10.2", "jaxlib==0.10.2"]


def purelib(python: Path) -> str:
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return subprocess.run([str(python), "-c", code], check=True, capture_output=True,
                          text=True).stdout.strip()


def main() -> int:
    course, bench = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    subprocess.run([sys.executable, "-m", "venv", str(bench)], check=True)
    course_python, bench_python = course / "bin" / "python", bench / "bin" / "python"
    # addsitedir (not a bare path) so that the course venv's own .pth files apply too
    # (the editable install of vaetp among them).
    line = f"import site; site.addsitedir({purelib(course_python)!r})\n"
    Path(purelib(bench_python), "zz_course_venv.pth").write_text(line, encoding="utf-8")
    frozen = subprocess.run([str(course_python), "-m", "pip", "freeze", "--exclude-editable"],
                            check=True, capture_output=True, text=True).stdout
    constraints = bench / "constraints.txt"
    constraints.write_text("".join(l + "\n" for l in frozen.splitlines()
                                   if l and not l.startswith(("-e", "#"))), encoding="utf-8")
    subprocess.run([str(bench_python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([str(bench_python), "-m", "pip", "install", "--quiet", "-c", str(constraints),
                    *PACKAGES], check=True)
    subprocess.run([str(bench_python), "-c", "import torch, jax, keras, vaetp; "
                    "print('bench venv: torch', torch.__version__, 'jax', jax.__version__)"], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
