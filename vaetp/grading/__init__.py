"""Grading the TP: every submission runs in a sandbox, every verdict is computed outside it.

One module per concern (docs/instructor.md, "Security model", tells the whole story):

- `sandbox`: the bubblewrap sandbox of a graded kernel, and the kernel manager that starts it;
- `confine`: the resource bounds (rlimits, cgroups) set just before the sandbox starts;
- `execute`: nbgrader's Execute step: runs the student's cells up to the graded ones, records
  each exercise, then writes the judge's verdicts into the graded cells;
- `exercises`: the graded exercises: where each is recorded, and how its record is read;
- `judge`: runs the graded cells' code, from the gradebook, against the records;
- `sanitize`: makes every student-made output and markdown cell safe for a browser;
- `limits`: caps text outputs; `markers`: the solution, hidden-test and `%load` markers;
- `release`, `submissions`, `report`, `layout`: the instructor's round (tools/grade.py).
"""
