"""JupyterHub hook for the course: the solutions where the `%load` line finds them.

    # jupyterhub_config.py (LocalProcessSpawner, SystemdSpawner: homes on the hub's machine)
    from vaetp.hub import link_solutions
    c.Spawner.pre_spawn_hook = link_solutions

A student's notebook is `~/vae/vae_tp.ipynb` (nbgrader's fetch), and each exercise's
`# %load ../solutions/NAME.py` line reads `~/solutions/NAME.py`. Install the repository's
`solutions/` once, read-only, at `/opt/vae-tp/solutions` (or set `VAE_TP_SOLUTIONS` in the
hub's environment), and this hook links `~/solutions` to it each time a server starts. Only for
self-study runs: for a graded release without solutions, do not set the hook (docs/instructor.md,
"Solutions shipped or not").

What it never does: replace anything the student made. An existing `~/solutions` (a folder, a
file, another link) is left as it is, and the hub's log says so. The link is made through a
descriptor of the home folder opened without following links, so a home that is itself a link
cannot send it elsewhere, and the link belongs to the student. For spawners whose homes are
volumes (DockerSpawner, KubeSpawner), mount the solutions read-only at `~/solutions` instead
(docs/jupyterhub.md).
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path
from typing import Any

#: Where the read-only solutions are installed on the hub's machine (override: VAE_TP_SOLUTIONS).
SOLUTIONS = "/opt/vae-tp/solutions"
LINK_NAME = "solutions"


def link_solutions(spawner: Any, solutions: str | None = None, home: str | None = None) -> str:
    """`~/solutions -> SOLUTIONS` for the spawner's user; returns what it did, in a few words."""
    target = solutions or os.environ.get("VAE_TP_SOLUTIONS", "").strip() or SOLUTIONS
    user = pwd.getpwnam(spawner.user.name) if home is None else None
    home = home if home is not None else user.pw_dir
    log = getattr(spawner, "log", None)
    if not Path(target).is_dir():
        outcome = f"not linked: the solutions folder {target} does not exist on this machine"
    else:
        folder = os.open(home, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            try:
                existing = os.readlink(LINK_NAME, dir_fd=folder)
            except FileNotFoundError:
                existing = None
            except OSError:  # there, and not a link: the student's own folder or file
                existing = ""
            if existing == target:
                outcome = "already linked"
            elif existing is not None:
                outcome = f"not linked: ~/{LINK_NAME} exists already and is left as it is"
            else:
                os.symlink(target, LINK_NAME, dir_fd=folder)
                owner = os.fstat(folder)
                os.chown(LINK_NAME, owner.st_uid, owner.st_gid, dir_fd=folder,
                         follow_symlinks=False)
                outcome = "linked"
        finally:
            os.close(folder)
    if log is not None:
        log.info("vaetp: ~/%s for %s: %s", LINK_NAME, spawner.user.name, outcome)
    return outcome
