"""nbgrader configuration of the VAE TP course. The course root is this repository.

Source assignment: source/vae/vae_tp.ipynb (the master notebook, with the solution).
The student notebook notebooks/vae_tp.ipynb is nbgrader's release of it (`make generate`).
"""

import os
import sys

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

c.CourseDirectory.course_id = "vae-tp"
c.CourseDirectory.source_directory = "source"

# What replaces the solution region of the exercise cell in the student notebook. No `raise`:
# JupyterLab applies `%load` (it replaces the cell with the solution) only when the cell runs
# without error, so a stub that raised would make "uncomment %load and run" do nothing. The
# check cell and the first graded test then say, in plain words, that `decoder` is missing.
c.ClearSolutions.code_stub = {
    "python": (
        "# YOUR CODE HERE: replace None with the decoder, a keras.Model (see the instructions above).\n"
        "decoder = None"
    )
}

# --- Grading (issue 3): bounded, robust autograding. See docs/instructor.md. ---
# Grading mode: `nbgrader autograde` always trains in fast mode (2 epochs on a subset), never
# the TP's 50 epochs, whatever the instructor's shell says.
if any(arg == "autograde" for arg in sys.argv[1:2]):
    os.environ["VAE_TP_FAST"] = "1"

# Time limits, in seconds: a cell running longer is interrupted (and its test scores 0); once a
# notebook has used up its time, its remaining cells are not run (and score 0). In fast mode the
# whole TP runs in about 15 s; override with VAE_TP_CELL_TIMEOUT / VAE_TP_NOTEBOOK_TIMEOUT.
c.Execute.timeout = int(os.environ.get("VAE_TP_CELL_TIMEOUT", "60"))
c.GradingExecute.notebook_timeout = int(os.environ.get("VAE_TP_NOTEBOOK_TIMEOUT", "300"))
# nbgrader's autograde steps, with vaetp.grading's executor (per-notebook limit, survives a
# kernel that dies) and output limiter (also caps characters, for a gigantic output).
c.Autograde.autograde_preprocessors = [
    "vaetp.grading.GradingExecute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "vaetp.grading.GradingLimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.GradingLimitOutput.max_lines = 1000
c.GradingLimitOutput.max_chars = 20_000
# A graded test cell deleted by a student is put back (from the gradebook) and run.
c.OverwriteCells.add_missing_cells = True
# Never copy trained weights lying next to the master into a release or a submission.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback",
                            "weights", "*.weights.h5"]
