"""nbgrader configuration of the VAE TP course. The course root is this repository.

Source assignment: source/vae/vae_tp.ipynb (the master notebook, with the solution).
The student notebook notebooks/vae_tp.ipynb is nbgrader's release of it (`make generate`).
"""

import os
import sys

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

c.CourseDirectory.course_id = "vae-tp"
c.CourseDirectory.source_directory = "source"

# What replaces the solution region of each exercise cell in the student notebook: a comment.
# No `raise`: JupyterLab applies `%load` (it replaces the cell with the solution) only when the
# cell runs without error, so a stub that raised would make "uncomment %load and run" do
# nothing. The check cell and the first graded test then say, in plain words, that the name
# the exercise asks for (`kl_divergence`, `decoder`, ...) is missing.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE (see the instructions above)"}

# --- Grading: sandboxed execution, verdicts from outside the student's kernel (docs/instructor.md,
# "Security model"). ---
# Grading mode: `nbgrader autograde` always runs in fast mode, whatever the instructor's shell says
# (the kernel's environment is set by the grader: vaetp/grading/sandbox.py).
if any(arg == "autograde" for arg in sys.argv[1:2]):
    os.environ["VAE_TP_FAST"] = "1"

# Time limits, in seconds: a cell running longer is interrupted; once a notebook has used up its
# time, its remaining cells are not run.
c.Execute.timeout = 60
c.GradingExecute.notebook_timeout = 300
# The sandbox (vaetp/grading/sandbox.py, SandboxSettings): each graded kernel's bounds, and warm
# starts from a zygote. mode = "off" grades without it (the report and grades.csv say so).
c.SandboxSettings.mode = "bubblewrap"
c.SandboxSettings.memory_mb = 4096  # address space: TensorFlow alone reserves about 2.5 GB
c.SandboxSettings.processes = 256  # processes and threads
c.SandboxSettings.file_mb = 256  # the largest file
c.SandboxSettings.disk_mb = 512  # each tmpfs (work folder, /tmp)
c.SandboxSettings.cpu_seconds = 900
c.SandboxSettings.warm_start = True
# nbgrader's autograde steps. GradingExecute runs the student's cells in a bubblewrap sandbox
# (c.SandboxSettings.mode = "off" turns it off, and the report says so), never runs the graded test cells in
# the student's kernel, and writes into them the verdicts of vaetp.grading.judge. SanitizeOutputs
# then makes every output and markdown cell safe to show in a browser (Formgrader, feedback); it
# comes after SaveAutoGrades, which tells an unanswered answer cell by its checksum. KeepHandMarks,
# between them, keeps a hand mark only on an answer unchanged since it was graded, and flags the
# changed ones for hand grading again (vaetp/grading/handmarks.py).
c.Autograde.autograde_preprocessors = [
    "vaetp.grading.execute.GradingExecute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "vaetp.grading.limits.GradingLimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "vaetp.grading.handmarks.KeepHandMarks",
    "vaetp.grading.sanitize.SanitizeOutputs",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.GradingLimitOutput.max_lines = 1000
c.GradingLimitOutput.max_chars = 20_000
# Late submissions (docs/instructor.md, "Moodle"): autograde compares each submission's timestamp
# (timestamp.txt: Moodle's zip entry date on import) with the assignment's due date in the
# gradebook (`make import DUEDATE=...`), and records how late it is. The penalty: "none"
# (recorded, no points taken; nbgrader's default) or "zero" (a late submission scores 0); a
# plugin of your own: c.AssignLatePenalties.plugin_class.
c.LateSubmissionPlugin.penalty_method = "none"
# A graded test cell deleted by a student is put back (from the gradebook) and run.
c.OverwriteCells.add_missing_cells = True
# Never copy trained weights lying next to the master into a release or a submission.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback",
                            "weights", "*.weights.h5"]

# --- Feedback (vaetp/grading/feedback.py): each graded cell named after what it is, a failed
# test as its plain sentence, "not graded yet" (not 0) for a question nobody graded by hand.
c.GenerateFeedback.exporter_class = "vaetp.grading.feedback.FeedbackExporter"
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "vaetp.grading.feedback.FeedbackDetails",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]

# --- The instructor's round (tools/grade.py; vaetp/grading/settings.py, GradingRound): notebooks
# graded at once, whether `release` ships solutions/ (self-study) or not (a graded run: the
# notebook's "Stuck?" lines then say stuck_help, or a default sentence). A command-line option
# (--jobs, --no-solutions, --stuck) wins over these.
c.GradingRound.jobs = 1
c.GradingRound.ship_solutions = True
c.GradingRound.stuck_help = ""

# --- For one run, environment variables override the settings above, read in one place
# (vaetp/grading/settings.py, OVERRIDES): VAE_TP_CELL_TIMEOUT, VAE_TP_NOTEBOOK_TIMEOUT,
# VAE_TP_SANDBOX=off, VAE_TP_SANDBOX_MEMORY_MB (and _PROCESSES, _FILE_MB, _DISK_MB,
# _CPU_SECONDS), VAE_TP_ZYGOTE=off, VAE_TP_GRADING_JOBS, VAE_TP_SHIP_SOLUTIONS=0,
# VAE_TP_STUCK_HELP.
from vaetp.grading.settings import apply_environment  # noqa: E402

apply_environment(c)
