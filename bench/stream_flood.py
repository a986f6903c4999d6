"""The grader's peak memory while a sandboxed kernel floods it with large stream messages.

    PYTHONPATH=. python bench/stream_flood.py [--messages N] [--mb M]

A notebook whose one cell writes N stream messages of M MB each (flushed one by one) runs
through GradingExecute's output handling (the same process_message and kernel manager as
`make autograde`); the script prints the grader process's peak RSS (ru_maxrss) before and after,
and how many bytes of output the cell kept.
"""

from __future__ import annotations

import argparse
import resource
import time

import nbformat

from vaetp.grading.execute import GradingExecute


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=60)
    parser.add_argument("--mb", type=int, default=10)
    args = parser.parse_args()
    code = ("import sys\n"
            f"block = 'x' * ({args.mb} * 2**20)\n"
            f"for _ in range({args.messages}):\n"
            "    sys.stdout.write(block)\n    sys.stdout.flush()\n"
            "print('done')\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code),
                                         nbformat.v4.new_code_cell("print('next cell')")])
    grader = GradingExecute(timeout=300)
    grader._recording, grader._cell_bytes, grader._dropped, grader._managers = False, {}, {}, []
    grader._deadline, grader._stop_reason, grader._record_at, grader._tests = None, None, {}, {}
    grader._last, grader._skipped = len(nb.cells), set()
    before = rss_mb()
    start = time.monotonic()
    try:
        grader.nb = nb
        with grader.setup_kernel():
            for index, cell in enumerate(nb.cells):
                grader.preprocess_cell(cell, {}, index)
    finally:
        for manager in grader._managers:
            manager.cleanup_sandbox()
    kept = sum(len(o.get("text", "")) for o in nb.cells[0].outputs)
    for cell in nb.cells:
        print([(o.output_type, (o.get("text") or o.get("evalue") or "")[:150]) for o in cell.outputs])
    print(f"{args.messages} messages of {args.mb} MB: grader peak RSS {before:.0f} MB before the "
          f"cell, {rss_mb():.0f} MB after; {kept:,} characters kept, "
          f"{grader._dropped.get(0, 0):,} bytes dropped; {time.monotonic() - start:.1f} s")


if __name__ == "__main__":
    main()
