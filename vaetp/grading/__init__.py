"""Grading the TP: every submission runs in a sandbox, every verdict is computed outside it.

One module per concern (docs/instructor.md, "Security model", tells the whole story):

- `sandbox`: the bubblewrap sandbox of a graded kernel, and the kernel manager that starts it;
- `confine`: the resource bounds (rlimits, cgroups) set just before the sandbox starts;
- `execute`: nbgrader's Execute step: runs the student's cells up to the graded ones, records
  each exercise, then writes the judge's verdicts into the graded cells;
- `exercises`: the graded exercises: where each is recorded, and how its record is read;
- `judge`: runs the graded cells' code, from the gradebook, against the records;
- `reference`, `expected`: the TP's answers and what the judge expects of the model exercises,
  which the sandbox hides from a graded kernel (it mounts an empty folder over this package);
- `sanitize`: makes every student-made output and markdown cell safe for a browser;
- `csp`: the Content-Security-Policy of the Formgrader's submission pages (a server extension);
- `feedback`: the feedback page a student reads (cells named after what they are, failed tests
  as plain sentences, "not graded yet" for a question nobody graded);
- `handmarks`: a regrade keeps a hand mark only on an unchanged answer;
- `limits`: caps text outputs; `markers`: the solution, hidden-test and `%load` markers;
- `release`, `submissions` (import, and repair from the release), `report`, `layout`: the
  instructor's round (tools/grade.py).
"""
