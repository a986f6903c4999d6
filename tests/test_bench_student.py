"""`make bench-student`'s report, from made-up runs: what an admin sizing a hub reads."""

from __future__ import annotations

import importlib.util

from course_paths import ROOT


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_student", ROOT / "bench" / "student.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def a_run(killed=None):
    cells = [
        {"id": "imports", "section": "3. Libraries", "seconds": 2.0, "cpu_seconds": 2.0,
         "rss_before_mb": 50.0, "peak_rss_mb": 590.0, "rss_after_mb": 590.0},
        {"id": "parameters", "section": "6. Parameters", "seconds": 0.0, "cpu_seconds": 0.0,
         "rss_before_mb": 590.0, "peak_rss_mb": 595.0, "rss_after_mb": 595.0},
        {"id": "anomaly-scores", "section": "17. Anomaly detection", "seconds": 1.9,
         "cpu_seconds": 2.5, "rss_before_mb": 1481.0, "peak_rss_mb": 1742.0, "rss_after_mb": 1700.0},
    ]
    return {"seconds": 300.0, "cpu_seconds": 480.0, "peak_rss_mb": 1800.0,
            "peak_private_mb": 1750.0, "killed": killed, "cells": cells,
            "sections": {"3. Libraries": {"seconds": 2.0, "cpu_seconds": 2.0, "peak_rss_mb": 590.0}}}


def test_the_cell_table_lists_the_cells_where_memory_rose_and_what_they_kept():
    report = load_bench().cell_table(a_run())
    assert "| imports | 3 | 2.0 | 50 | 590 | 590 | +540 |" in report
    assert "| anomaly-scores | 17 | 1.9 | 1481 | 1742 | 1700 | +219 |" in report
    assert "parameters" not in report  # 5 MB: below the 20 MB the table shows


def test_a_run_that_stops_early_is_reported_with_the_kernels_reason():
    reason = "CellExecutionError in section 4. Data, cell load-data: MnistNotFoundError: set VAE_TP_MNIST"
    report = load_bench().table({1: [a_run()], 2: [a_run(), a_run(killed=reason)]})
    assert "| 2 | 300 / 300 | 480 | 1.76 | 1.71 | 1 |" in report
    assert f"- 2 at once, run 2: {reason}" in report
    assert "1 at once" not in report
