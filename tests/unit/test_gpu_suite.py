"""The GPU speed suite's dry run: every section runs at tiny sizes, so it cannot rot."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SECTIONS = {"ceilings", "restoration_training", "careamics", "prediction", "roofline",
            "segmentation", "localize"}


def test_dry_run_records_every_section(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_suite.py"), "--dry-run",
         "--out", str(tmp_path), "--careamics-python", "none"],
        capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    [path] = tmp_path.glob("gpu_dryrun_*.json")
    result = json.loads(path.read_text())
    assert result["dry_run"] is True and "gpu_suite.py" in result["command"]
    assert set(result["sections"]) == SECTIONS
    for name, section in result["sections"].items():
        assert "error" not in section, (name, section.get("traceback"))
        assert section["rows"], name
        for row in section["rows"]:
            # Every row is a measured, finite, positive number or a recorded reason.
            if "note" in row:
                assert row["note"], name
            else:
                assert math.isfinite(row["value"]) and row["value"] > 0, (name, row)
                assert row["unit"] and row["keys"], (name, row)
    assert result["sections"]["careamics"]["rows"][0]["note"].startswith("careamics skipped")
    methods = {(r["method"], r["loop"]) for r in result["sections"]["restoration_training"]["rows"]
               if "loop" in r}
    assert {("care", "lightning"), ("n2v", "lightning"), ("care", "bare")} <= methods
    units = {r["unit"] for s in result["sections"].values() for r in s["rows"] if "unit" in r}
    assert {"patches/s", "Mpx/s", "s/image (median)", "frames/s"} <= units
    assert [c["what"] for c in result["comparisons"]][:2] == ["care training patches/s",
                                                               "n2v training patches/s"]
    # The table is printed for the log.
    assert "vs careamics" in res.stdout
