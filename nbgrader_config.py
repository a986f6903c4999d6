"""nbgrader configuration of the VAE TP course. The course root is this repository.

Source assignment: source/vae/vae_tp.ipynb (the master notebook, with the solution).
The student notebook notebooks/vae_tp.ipynb is nbgrader's release of it (`make generate`).
"""

import os
import sys

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

c.CourseDirectory.course_id = "vae-tp"
c.CourseDirectory.source_directory = "source"

# What replaces the solution region of the exercise cell in the student notebook.
c.ClearSolutions.code_stub = {
    "python": (
        "# YOUR CODE HERE\n"
        "raise NotImplementedError(\n"
        '    "Build the decoder: keras.Input(shape=(latent_dim,)) -> Dense(512, relu) "\n'
        '    "-> Dense(784, sigmoid), as keras.Model(..., name=\'decoder\'). "\n'
        '    "Stuck? Uncomment the %load line above and run the cell twice."\n'
        ")"
    )
}

# Grading mode: `nbgrader autograde` trains in fast mode, never the full 50 epochs.
if any(arg == "autograde" for arg in sys.argv[1:2]):
    os.environ.setdefault("VAE_TP_FAST", "1")
