"""A copy of the whole course whose master has other sizes, made the way an instructor changes them.

    python tools/make_variant.py --out build/variant latent_dim=10 [intermediate_dim=256 ...]
    cd build/variant && PYTHONPATH=. VAE_TP_MNIST=... python -m pytest     # the whole suite on it

(`make test-variant VARIANT="latent_dim=10"` does both.) The copy is a `git clone` of this
checkout's last commit (uncommitted changes are not in it); in it, the master's parameters cell
gets the new values (`vaetp.course.with_parameters`: the instructor's one edit, done by code)
and `tools/generate.py` writes everything derived from the master, as `make generate` does.
Nothing else is edited: a test that fails on the copy assumes the TP's sizes somewhere.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from vaetp.course import with_parameters

ROOT = Path(__file__).resolve().parents[1]
MASTER = Path("source") / "vae" / "vae_tp.ipynb"


def parse_change(text: str) -> tuple[str, int]:
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"{text!r}: write NAME=VALUE, e.g. latent_dim=10")
    try:
        return name, int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: the value must be an integer") from None


def make_variant(out: Path, changes: dict[str, int], source: Path = ROOT) -> Path:
    """Clone `source` into `out` (which must not exist), set `changes` in the master's
    parameters cell, generate. Returns the copy's master."""
    if out.exists():
        raise FileExistsError(f"{out} exists: remove it, or give another --out")
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(source), str(out)], check=True)
    master = out / MASTER
    nbformat.write(with_parameters(nbformat.read(master, as_version=4), **changes), master)
    subprocess.run([sys.executable, str(out / "tools" / "generate.py"), "--root", str(out)],
                   check=True)
    return master


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--replace", action="store_true", help="remove --out first if it exists")
    parser.add_argument("changes", nargs="+", type=parse_change, metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    if args.replace and args.out.exists():
        shutil.rmtree(args.out)
    master = make_variant(args.out, dict(args.changes))
    print(f"{master}: " + ", ".join(f"{k} = {v}" for k, v in args.changes) + "; generated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
