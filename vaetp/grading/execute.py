"""`GradingExecute`: nbgrader's Execute step, with the student's code in a sandbox and the verdicts
computed outside it.

For one submission (after nbgrader has restored the read-only and graded cells from the
gradebook):

1. The kernel starts in a fresh sandbox (`vaetp.grading.sandbox`).
2. The student's cells run in order, with a time limit per cell and per notebook. The graded
   test cells are **never sent to the kernel**. When the first graded cell of an exercise is
   reached, the exercise's probe (`vaetp.grading.exercises`) records what the student built;
   the record, a few MB of numbers, is the only thing kept from the kernel. Cells after the
   last graded cell are not run: the verdicts do not need them (their outputs are empty).
   Nor are the cells that the master tags `skip-when-grading` (training, figures): every
   exercise is judged on inputs the grader chooses, so none needs a trained model. The cells not
   run keep their outputs from the notebook as handed in, under a note that says so (cleaned
   later by `SanitizeOutputs`, like every output), so that the student's feedback shows their
   own figures.
3. The kernel and its sandbox are destroyed.
4. The judge (`vaetp.grading.judge`), a fresh sandboxed process, runs each graded cell's code,
   taken from the gradebook (hidden tests included), against the records.
5. Each graded cell gets its verdict as its only output: nothing on success, or an error
   output holding the plain sentence. nbgrader's SaveAutoGrades scores them from that. The
   hidden-test regions are removed from the cells' source, so that the feedback never shows
   them.

So the score depends only on the records, and a record only on what the student built: a
kernel that empties later cells, patches `checks`, or prints a fake success changes nothing.
The outcome is written in the notebook's metadata (`vaetp_grading`) for the report.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Integer, Unicode

from vaetp import calls
from vaetp.decoder_data import MAX_BYTES
from vaetp.course import master_parameters
from vaetp.grading import markers, sandbox
from vaetp.grading.exercises import EXERCISES, MIME, exercise_of, probe, stand_in_code, stand_in_note
from vaetp.grading.judge import GRADING_ERROR

NOT_RUN = "NotRunByGrader"
TIMEOUT = "CellTimeoutError"
KERNEL_DIED = "KernelDied"
OUTPUT_TOO_LARGE = "OutputTooLarge"
SKIP_TAG = "skip-when-grading"
#: The largest record a probe may hand over (a decoder's weights are the largest).
RECORD_BYTES = max(MAX_BYTES, calls.MAX_BYTES)
SKIPPED_NOTE = "[not run by the grader: training and figures change no grade]\n"
#: Above the outputs of a cell the grader did not run, shown from the notebook as handed in.
AS_SUBMITTED_NOTE = ("[as handed in, not re-run by the grader: training and figures change no "
                     "grade]\n")
#: The grader's own errors, never taken from a notebook as handed in (the report counts them).
GRADER_ENAMES = {NOT_RUN, TIMEOUT, KERNEL_DIED, OUTPUT_TOO_LARGE, GRADING_ERROR}


def error_output(ename: str, message: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=message,
                        traceback=[f"\x1b[0;31m{ename}\x1b[0m: {message}"])


def _size(value: Any) -> int:
    """About how many bytes a message's content holds (its strings)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(_size(k) + _size(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return sum(_size(v) for v in value)
    return 8


def skipped_when_grading(master: Path) -> set[str]:
    """Ids of the master's code cells tagged `skip-when-grading`: training and figures, which no
    verdict depends on (every graded exercise is judged on inputs the grader chooses)."""
    import nbformat

    nb = nbformat.read(master, as_version=4)
    return {c.get("id") for c in nb.cells
            if c.cell_type == "code" and SKIP_TAG in c.get("metadata", {}).get("tags", [])}


#: The course's grading key, beside the gradebook (never in a release, never in a sandbox).
KEY_FILE = ".grading_key"


def grading_key(path: Path) -> bytes:
    """The course's secret grading key, created (32 random bytes, mode 0600) the first time.
    Graders running at once agree on one key: it is written to a temporary file and linked into
    place, which fails if another grader was first."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    if path.is_symlink() or not path.is_file():
        raise RuntimeError(f"{path} must be a plain file (the course's grading key); remove it "
                           "and grade again to make a new one.")
    key = path.read_bytes()
    if len(key) < 16:
        raise RuntimeError(f"{path} holds {len(key)} bytes, too short for a grading key; remove it "
                           "and grade again to make a new one (grades do not depend on it).")
    return key


def student_seed(key: bytes, student: str, assignment: str, notebook: str) -> int:
    """The seed of one student's grading inputs: an HMAC of the course's secret key, so that
    nobody without the key can compute the inputs (or the answers on them) in advance. The same
    student is graded on the same inputs on every regrade."""
    text = f"{student}/{assignment}/{notebook}".encode()
    return int(hmac.new(key, text, hashlib.sha256).hexdigest()[:8], 16)


def run_judge(job: dict[str, Any], records: dict[str, bytes], timeout: float = 120) -> dict:
    """Run the judge in a fresh (sandboxed unless the sandbox is off) process."""
    with tempfile.TemporaryDirectory(prefix="vaetp-judge-") as folder:
        (Path(folder) / "job.json").write_text(json.dumps(job), encoding="utf-8")
        for name, blob in records.items():
            (Path(folder) / f"{name}.npz").write_bytes(blob)
        command = [sys.executable, "-m", "vaetp.grading.judge"]
        limits = sandbox.Limits.from_env()
        env = sandbox.kernel_environment()
        if sandbox.mode() == "off":
            argv = sandbox.confine_command(["/usr/bin/env", "-i", *(f"{k}={v}" for k, v in env.items()),
                                            *command, folder], limits, None)
        else:
            argv = sandbox.confine_command(sandbox.bwrap_command(
                [*command, "/job"], connection_file=None, limits=limits, env=env,
                readonly=[(folder, "/job")]), limits, None)
        try:
            # stdin from /dev/null, stdout and stderr on pipes of the grader: nothing inherited
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            return {}
        try:
            return json.loads(done.stdout.strip().splitlines()[-1])["verdicts"]
        except (IndexError, ValueError, KeyError):
            sys.stderr.write(f"the judge failed (exit {done.returncode}):\n{done.stderr[-3000:]}\n")
            return {}


class GradingExecute(Execute):
    """nbgrader's Execute, sandboxed, with verdicts from the judge (see the module's doc)."""

    notebook_timeout = Integer(
        300, help="Seconds for the whole notebook; later cells are not run (0: no limit)."
    ).tag(config=True)
    max_cell_output_bytes = Integer(
        2_000_000, help="Output kept per cell, in bytes; the rest is dropped as it arrives."
    ).tag(config=True)
    max_output_bytes = Integer(
        20_000_000, help="Output kept per notebook, in bytes; the rest is dropped as it arrives."
    ).tag(config=True)
    grading_key_file = Unicode(
        "", help="The course's secret grading key (created on first use; default: "
                 f"<course root>/{KEY_FILE}). Each student's grading inputs are drawn from an "
                 "HMAC of it: keep it out of releases and away from students."
    ).tag(config=True)
    submitted_output_bytes = Integer(
        3_000_000, help="Outputs shown as handed in, in bytes per notebook, for the cells the "
        "grader does not run (figures, training logs); past that, a cell shows the grader's note "
        "alone. They are cleaned like every output (SanitizeOutputs)."
    ).tag(config=True)
    iopub_timeout = Integer(
        10, help="Seconds to wait for a cell's last output after its reply (a busy machine can "
        "delay it); past that, the cell is marked timed out and grading goes on."
    ).tag(config=True)

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs["kernel_manager_class"] = sandbox.SandboxedKernelManager
        # the kernel has nothing to save: its sandbox is killed at once when the last cell is
        # done (a graceful shutdown waited about a second per submission)
        kwargs.setdefault("shutdown_kernel", "immediate")
        super().__init__(*args, **kwargs)

    # -- the plan: which cells are graded tests, where each exercise is recorded --------------

    def _plan(self, nb: NotebookNode, resources: dict) -> None:
        from nbgrader.api import Gradebook
        from nbgrader.coursedir import CourseDirectory

        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gb:
            notebook = gb.find_notebook(info["notebook"], info["assignment"])
            tests = {cell.name: gb.find_source_cell(cell.name, info["notebook"],
                                                    info["assignment"]).source
                     for cell in notebook.grade_cells if cell.cell_type == "code"}
        self._tests: dict[int, tuple[str, str]] = {}
        for index, cell in enumerate(nb.cells):
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if cell.cell_type == "code" and grade_id in tests and index not in self._tests \
                    and grade_id not in {g for g, _ in self._tests.values()}:
                self._tests[index] = (grade_id, tests[grade_id])
        self._record_at: dict[int, Any] = {}
        for index in sorted(self._tests):
            exercise = exercise_of(self._tests[index][0])
            if exercise and exercise not in self._record_at.values():
                self._record_at[index] = exercise
        self._last = max(self._tests, default=len(nb.cells) - 1)
        coursedir = CourseDirectory(config=self.config)
        master = Path(coursedir.format_path(coursedir.source_directory, ".", info["assignment"]))
        self._parameters = master_parameters(master / f"{info['notebook']}.ipynb")
        self._skipped = skipped_when_grading(master / f"{info['notebook']}.ipynb")
        self._handed_in = self._outputs_as_handed_in(coursedir, info)
        key_file = Path(self.grading_key_file or Path(coursedir.root) / KEY_FILE)
        self._seed = student_seed(grading_key(key_file), info.get("student", ""),
                                  info["assignment"], info["notebook"])

    def _outputs_as_handed_in(self, coursedir: Any, info: dict) -> dict[str, list]:
        """{cell id: outputs} of the submitted notebook's code cells, within
        `submitted_output_bytes` in the notebook's order (the rest: not shown). The submitted
        notebook is the student's, repaired before grading; its outputs are what their own run
        showed. Never the grader's own error names (the report counts those)."""
        import nbformat

        path = Path(coursedir.format_path(coursedir.submitted_directory, info.get("student", "."),
                                          info["assignment"])) / f"{info['notebook']}.ipynb"
        try:
            submitted = nbformat.read(path, as_version=4)
        except Exception:  # noqa: BLE001 - nothing to show: the grader's note stands
            return {}
        found: dict[str, list] = {}
        left = self.submitted_output_bytes
        for cell in submitted.cells:
            if cell.get("cell_type") != "code" or not isinstance(cell.get("id"), str):
                continue
            outputs = [o for o in cell.get("outputs", []) if not (
                o.get("output_type") == "error" and o.get("ename") in GRADER_ENAMES)]
            size = _size(outputs)
            if outputs and size <= left:
                found[cell["id"]] = outputs
                left -= size
        return found

    def _not_run(self, cell: NotebookNode, note: str | None) -> None:
        """A code cell the grader does not run: its outputs as handed in, under a note saying
        so; without any, `note` alone (or nothing)."""
        handed_in = self._handed_in.get(cell.get("id"))
        if handed_in:
            cell.outputs = [NotebookNode(output_type="stream", name="stdout",
                                         text=AS_SUBMITTED_NOTE), *handed_in]
        else:
            cell.outputs = [] if note is None else [
                NotebookNode(output_type="stream", name="stdout", text=note)]
        cell.execution_count = None

    # -- execution -------------------------------------------------------------------------

    def preprocess(self, nb: NotebookNode, resources: Any = None, km: Any = None):
        sandbox.check_available()  # a clear message (install bubblewrap, or the explicit switch)
        self._plan(nb, resources)
        self._records: dict[str, bytes] = {}
        self._why_missing: dict[str, str] = {}
        self._deadline = (time.monotonic() + self.notebook_timeout
                          if self.notebook_timeout and self.notebook_timeout > 0 else None)
        self._stop_reason: str | None = None
        timed_out = (f"this cell ran longer than the grading limit ({self.timeout} s per cell, "
                     f"{self.notebook_timeout} s per notebook) and was interrupted; an endless "
                     "loop?")
        self.error_on_timeout = {  # the message in evalue too: the feedback page shows that
            "ename": TIMEOUT, "evalue": timed_out,
            "traceback": [f"\x1b[0;31m{TIMEOUT}\x1b[0m: {timed_out}"],
        }
        started = time.monotonic()
        self._managers: list[Any] = []
        self._recording = False
        self._cell_bytes: dict[int, int] = {}
        self._dropped: dict[int, int] = {}
        try:
            nb, resources = super().preprocess(nb, resources, km)
        finally:
            for manager in self._managers:  # the sandbox's cgroup and runtime folder
                manager.cleanup_sandbox()
        executed = time.monotonic()
        missing = {e.name: self._why_missing.get(e.name, "your notebook did not hand your work "
                                                 "to the grader") for e in EXERCISES
                   if e.name not in self._records}
        verdicts = run_judge({"parameters": self._parameters, "missing": missing, "seed": self._seed,
                              "tests": [{"grade_id": g, "source": s}
                                        for g, s in self._tests.values()]}, self._records)
        noted: set[str] = set()
        for index, (grade_id, _) in sorted(self._tests.items()):
            cell = nb.cells[index]
            cell.source = markers.strip(cell.source, markers.HIDDEN_TESTS)
            cell.execution_count = None
            verdict = verdicts.get(grade_id)
            if verdict is None:
                cell.outputs = [error_output(GRADING_ERROR, "the grader could not judge this test; "
                                             "ask your instructor to look at it.")]
            elif verdict["passed"]:
                cell.outputs = []
            else:
                message = verdict["message"]
                exercise = exercise_of(grade_id)
                if exercise is not None and exercise.stand_in and exercise.name not in noted:
                    noted.add(exercise.name)  # once per exercise, on its first failed test
                    message += stand_in_note(exercise)
                cell.outputs = [error_output(verdict["ename"] or GRADING_ERROR, message)]
        judged = time.monotonic()
        start = ",".join(getattr(m, "start", "?") for m in self._managers) or "none"
        nb.metadata["vaetp_grading"] = {
            "sandbox": sandbox.mode(),
            "start": start,
            "records": sorted(self._records),
            "seconds": {"kernel": round(executed - started, 2), "judge": round(judged - executed, 2)},
        }
        self.log.info("graded in %.1f s: kernel (sandbox %s, %s start) %.1f s, judge %.1f s",
                      judged - started, sandbox.mode(), start, executed - started,
                      judged - executed)
        return nb, resources

    def process_message(self, msg: dict, cell: NotebookNode, cell_index: int):
        """Outputs count against a budget per cell and per notebook as they arrive: a
        submission cannot make the grader hold or write gigabytes (widget messages are
        dropped: no grade needs them)."""
        kind = msg.get("msg_type", "")
        if kind.startswith("comm"):
            return None
        if kind in ("stream", "display_data", "execute_result", "error", "update_display_data"):
            size = _size(msg.get("content"))
            if self._recording:
                # only the record comes back from a probe: one display of our MIME type, once;
                # whatever else the student's code prints while it is recorded is dropped
                data = msg.get("content", {}).get("data", {}) if kind == "display_data" else {}
                if MIME not in data or size > RECORD_BYTES * 4 // 3 + 100_000 or self._kept_record:
                    return None
                self._kept_record = True
            else:
                spent = self._cell_bytes.get(cell_index, 0)
                total = sum(self._cell_bytes.values())
                if spent + size > self.max_cell_output_bytes or total + size > self.max_output_bytes:
                    self._dropped[cell_index] = self._dropped.get(cell_index, 0) + size
                    return None
                self._cell_bytes[cell_index] = spent + size
        return super().process_message(msg, cell, cell_index)

    def create_kernel_manager(self) -> Any:
        manager = super().create_kernel_manager()
        self._managers.append(manager)
        return manager

    def _get_timeout(self, cell: NotebookNode | None) -> int | None:
        timeout = super()._get_timeout(cell)
        if self._deadline is None or cell is None:
            return timeout
        left = max(1, math.ceil(self._deadline - time.monotonic()))
        return left if timeout is None else min(timeout, left)

    def preprocess_cell(self, cell: NotebookNode, resources: Any, index: int):
        cell, resources = self._run_cell(cell, resources, index)
        if self._dropped.get(index):  # first, so that no later line limit cuts it off
            cell.outputs.insert(0, NotebookNode(
                output_type="stream", name="stderr",
                text=f"[the grader dropped {self._dropped[index]:,} bytes of output beyond its "
                     f"limits ({self.max_cell_output_bytes:,} bytes per cell, "
                     f"{self.max_output_bytes:,} per notebook)]\n"))
        return cell, resources

    def _run_cell(self, cell: NotebookNode, resources: Any, index: int):
        if index in self._record_at:
            self._record(self._record_at[index], index)
        if index in self._tests or cell.cell_type != "code" or not cell.source.strip():
            return cell, resources
        if index > self._last:
            self._not_run(cell, None)  # not needed for any verdict
            return cell, resources
        if cell.get("id") in self._skipped and not cell.metadata.get("nbgrader", {}).get("solution"):
            self._not_run(cell, SKIPPED_NOTE)
            return cell, resources
        if self._stop_reason is None and self._deadline is not None \
                and time.monotonic() >= self._deadline:
            self._stop_reason = (f"not run: the notebook used up its grading time "
                                 f"({self.notebook_timeout} s) before this cell.")
        if self._stop_reason is None and self._iopub_lost():  # noticed after a timeout
            self._stop_reason = ("not run: an earlier cell sent an output larger than "
                                 f"{sandbox.MAX_MESSAGE_BYTES // 2**20} MB in one message, "
                                 "and the grader stopped reading this notebook's outputs.")
        if self._stop_reason is not None:
            cell.outputs = [error_output(NOT_RUN, self._stop_reason)]
            cell.execution_count = None
            return cell, resources
        try:
            return super().preprocess_cell(cell, resources, index)
        except CellTimeoutError:
            # the reply came, its outputs did not (in time): a busy machine, or a kernel that
            # holds its output thread; or the grader closed the output channel on a message
            # over its size bound, after which no output can come
            if self._iopub_lost():
                self._stop_reason = ("not run: an earlier cell sent an output larger than "
                                     f"{sandbox.MAX_MESSAGE_BYTES // 2**20} MB in one message, "
                                     "and the grader stopped reading this notebook's outputs.")
                cell.outputs.append(error_output(OUTPUT_TOO_LARGE, (
                    f"this cell sent an output larger than {sandbox.MAX_MESSAGE_BYTES // 2**20} MB "
                    "in one message; the grader stopped reading this notebook's outputs, so the "
                    "later cells were not run. Print less.")))
            else:
                self.log.warning("Cell %s: its outputs did not come in time; grading goes on", index)
                cell.outputs.append(error_output(TIMEOUT, (
                    f"this cell finished, but its outputs did not reach the grader within "
                    f"{self.iopub_timeout} s (a busy grading machine, or a cell that holds the "
                    "kernel's output thread); the outputs may be incomplete, the later cells ran.")))
            return cell, resources
        except DeadKernelError:
            self.log.warning("The kernel died in cell %s; the later cells are not run", index)
            cell.outputs.append(error_output(
                KERNEL_DIED, "the Python kernel died while running this cell (os._exit, a crash, "
                "or a memory, process or disk bound of the grader), so it did not finish and no "
                "later cell could run."))
            self._stop_reason = ("not run: the Python kernel died in an earlier cell, so this "
                                 "cell could not run.")
            return cell, resources

    def _iopub_lost(self) -> bool:
        kc = getattr(self, "kc", None)
        return bool(kc is not None and getattr(kc, "iopub_lost", None) and kc.iopub_lost())

    def _record(self, exercise: Any, index: int) -> None:
        """Record the exercise, then (for an exercise others build on) put the grader's stand-in
        in the notebook where its own is missing or unusable (`vaetp.stand_ins`)."""
        self._probe(exercise, index)
        if exercise.stand_in and self._stop_reason is None:
            self._run_quietly(stand_in_code(exercise, self._parameters), index)

    def _run_quietly(self, source: str, index: int) -> None:
        """Run grader code in the kernel; nothing it or a hook of the student prints is kept."""
        cell = NotebookNode(cell_type="code", source=source, metadata={}, outputs=[],
                            execution_count=None, id="vaetp-stand-in")
        original = self.nb.cells[index]
        self._recording, self._kept_record = True, True  # drops every output
        try:
            self.execute_cell(cell, index, store_history=False)
        except DeadKernelError:
            self._stop_reason = "not run: the Python kernel died while the grader read your work."
        except Exception:  # noqa: BLE001 - a timeout: the later cells run as they can
            pass
        finally:
            self._recording = False
            self.nb.cells[index] = original

    def _probe(self, exercise: Any, index: int) -> None:
        """Send the exercise's probe to the kernel; keep the record it displays, nothing else."""
        if self._stop_reason is not None:
            self._why_missing[exercise.name] = ("the kernel had stopped before your work could "
                                                "be handed to the grader")
            return
        cell = NotebookNode(cell_type="code", source=probe(exercise, self._parameters, self._seed),
                            metadata={}, outputs=[], execution_count=None, id="vaetp-probe")
        original = self.nb.cells[index]
        self._recording, self._kept_record = True, False
        try:
            self.execute_cell(cell, index, store_history=False)
        except DeadKernelError:
            self._stop_reason = "not run: the Python kernel died while the grader read your work."
            self._why_missing[exercise.name] = "the kernel died while the grader read your work"
            return
        except Exception as err:  # noqa: BLE001 - timeouts and the like: no record
            self._why_missing[exercise.name] = f"the grader could not read your work ({type(err).__name__})"
            return
        finally:
            self._recording = False
            self.nb.cells[index] = original  # nbclient stores the cell it ran at this index
        for output in cell.outputs:
            text = output.get("data", {}).get(MIME) if output.get("output_type") == "display_data" else None
            if isinstance(text, str) and len(text) <= RECORD_BYTES * 4 // 3 + 4:
                try:
                    self._records[exercise.name] = base64.b64decode(text, validate=True)
                except (binascii.Error, ValueError):
                    continue
                return
        self._why_missing[exercise.name] = "your notebook did not hand your work to the grader"
