"""A quiet, informative autograding round: one line per student as their notebook is graded
(points and seconds), a progress bar with the time left on a terminal (tqdm), and nbgrader's
own log kept in a file, summarised in a few lines at the end.

nbgrader logs about forty lines per submission, most of them harmless: a warning that the
checksum of each hidden test cell "has changed" (nbgrader compares the submitted cell, in which
the hidden tests were removed at release, with the master's; nbgrader issue 1961), SQLAlchemy
and TensorFlow notices. `run_logged` sends each nbgrader job's log to
`<course>/logs/autograde-<time>/job-<k>.log`; `RoundProgress` follows those logs for each
finished student (and reads their points from the gradebook), and `summarise_log` turns the
logs into what an instructor must read: the known false alarms counted and explained once,
the hand marks the grader removed or flagged (vaetp/grading/handmarks.py) and nbgrader's
errors shown as they are.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Sequence, TextIO

#: Lines of nbgrader's log that are known to be harmless, with the one-line explanation shown
#: instead of them.
FALSE_ALARMS: dict[str, tuple[re.Pattern, str]] = {
    "checksum": (re.compile(r"Attribute 'checksum' for cell \S+ has changed"),
                 "nbgrader warned that the checksum of a hidden test cell changed: expected, "
                 "the release has those cells without their hidden tests (nbgrader issue 1961); "
                 "the grades do not depend on it"),
    "sqlalchemy": (re.compile(r"SAWarning|SADeprecationWarning|MovedIn20Warning"),
                   "SQLAlchemy notices from nbgrader's gradebook: harmless"),
    "tensorflow": (re.compile(r"oneDNN custom operations|cuda drivers|cpu_feature_guard|"
                              r"This TensorFlow binary is optimized|rebuild TensorFlow"),
                   "TensorFlow start-up notices from the graded kernels: harmless"),
}
_ERROR = re.compile(r"\|\s*(ERROR|CRITICAL)\s*\]|^Traceback|^\w+Error: ")
#: What the grader did to marks given by hand (vaetp/grading/handmarks.py): shown as it is.
_HAND_MARKS = re.compile(r"\|\s*WARNING\s*\]\s*(.*graded by hand.*)$")


def log_folder(course: Path, step: str = "autograde") -> Path:
    """A new folder for this round's logs (one file per nbgrader job):
    `<course>/logs/<step>-<YYYYmmdd-HHMMSS>/`."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = course / "logs" / f"{step}-{stamp}"
    counter = 1
    while path.exists():
        counter += 1
        path = course / "logs" / f"{step}-{stamp}-{counter}"
    path.mkdir(parents=True)
    return path


def summarise_log(text: str, max_errors: int = 5) -> list[str]:
    """What an instructor reads of nbgrader's log: each known false alarm counted once with its
    explanation, then nbgrader's error lines (the first `max_errors`)."""
    counts: Counter[str] = Counter()
    errors: list[str] = []
    marks: list[str] = []
    for line in text.splitlines():
        if (found := _HAND_MARKS.search(line)):
            marks.append(found.group(1).strip())
            continue
        for name, (pattern, _) in FALSE_ALARMS.items():
            if pattern.search(line):
                counts[name] += 1
                break
        else:
            if _ERROR.search(line.strip()):
                errors.append(line.strip())
    lines = [f"{counts[name]} x {explanation}"
             for name, (_, explanation) in FALSE_ALARMS.items() if counts[name]]
    if marks:
        lines.append(f"hand marks: {len(marks)} question(s) to look at again in the Formgrader:")
        lines += ["  " + m[:300] for m in marks[:20]]
        if len(marks) > 20:
            lines.append(f"  (and {len(marks) - 20} more in the log)")
    if errors:
        lines.append(f"{len(errors)} error line(s) from nbgrader, the first ones:")
        lines += ["  " + e[:300] for e in errors[:max_errors]]
    return lines


class RoundProgress:
    """Watches a round through nbgrader's logs, one per job (`logs`, beside `shares`, the students
    of each job). nbgrader writes a student's notebook twice: once sanitized, then, after
    "Autograding <path>" and saving the scores in the gradebook, graded; a student is done at
    that second write. Each job grades its students one after the other, so each student's
    seconds are counted from the previous one of the same job."""

    _AUTOGRADING = re.compile(r"\| INFO\] Autograding .*/autograded/([^/]+)/")
    _WRITING = re.compile(r"\| INFO\] Writing \d+ bytes to .*/autograded/([^/]+)/")

    def __init__(self, shares: Sequence[Sequence[str]], logs: Sequence[Path],
                 points: Callable[[str], str | None], out: TextIO | None = None,
                 interval: float = 0.5):
        self.shares = [list(s) for s in shares]
        self.logs, self.points, self.out, self.interval = list(logs), points, out, interval
        self.todo = [s for share in self.shares for s in share]
        self.done: dict[str, float] = {}
        self._offsets = [0] * len(self.logs)
        self._partial = [""] * len(self.logs)
        self._running: list[set[str]] = [set() for _ in self.logs]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bar = None

    def start(self) -> "RoundProgress":
        from tqdm import tqdm

        self.started = time.monotonic()
        self._job_last = [self.started] * len(self.logs)
        # disable=None: a bar on a terminal only; in a log, the per-student lines alone
        self._bar = tqdm(total=len(self.todo), unit="notebook", disable=None, file=self.out,
                         dynamic_ncols=True, desc="autograde")
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def _new_lines(self, job: int) -> list[str]:
        try:
            with self.logs[job].open("rb") as fh:
                fh.seek(self._offsets[job])
                chunk = fh.read()
        except OSError:
            return []
        self._offsets[job] += len(chunk)
        text = self._partial[job] + chunk.decode("utf-8", "replace")
        lines = text.split("\n")
        self._partial[job] = lines.pop()  # an unfinished line waits for the next poll
        return lines

    def poll(self) -> list[str]:
        """The students newly done, each reported with one line."""
        from tqdm import tqdm

        new = []
        for job in range(len(self.logs)):
            for line in self._new_lines(job):
                if (found := self._AUTOGRADING.search(line)):
                    self._running[job].add(found.group(1))
                elif (found := self._WRITING.search(line)) and found.group(1) in self._running[job]:
                    student = found.group(1)
                    self._running[job].discard(student)
                    now = time.monotonic()
                    self.done[student] = seconds = now - self._job_last[job]
                    self._job_last[job] = now
                    new.append(student)
                    shown = self.points(student) or "points not read"
                    tqdm.write(f"[{len(self.done)}/{len(self.todo)}] {student}: {shown} "
                               f"({seconds:.1f} s)", file=self.out)
                    if self._bar is not None:
                        self._bar.update(1)
        return new

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.poll()
        if self._bar is not None:
            self._bar.close()


def run_logged(commands: Sequence[Sequence[str]], logs: Sequence[Path], cwd: Path,
               env: dict) -> int:
    """Run the commands at once, each one's output appended to its log; the worst exit
    status."""
    files = [log.open("a", encoding="utf-8") for log in logs]
    try:
        running = [subprocess.Popen(list(c), cwd=cwd, env=env, stdout=fh,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
                   for c, fh in zip(commands, files)]
        return max(process.wait() for process in running)
    finally:
        for fh in files:
            fh.close()
