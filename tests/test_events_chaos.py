"""The chaos benchmark in its smoke form: 5,000 events (resends, malformed and poisoned events)
to a real ``adpilot serve`` on SQLite, killed with SIGKILL once during the load and restarted;
every invariant the script checks must hold in the JSON it writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "events_chaos.py"


@pytest.mark.slow
def test_chaos_quick_sqlite_one_kill(tmp_path):
    out = tmp_path / "chaos.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--kills", "1", "--drain-timeout", "90",
         "--max-resume", "90", "--out", str(out)],
        capture_output=True, text=True, timeout=900)
    assert out.exists(), proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["database"] == "sqlite"
    plan, summary, store = res["plan"], res["summary"], res["store"]
    # the stream really held what the invariants are about
    assert plan["duplicates"] > 0 and plan["malformed"] > 0 and plan["poisoned"] > 0
    assert plan["corrected_resends"] > 0
    assert summary["kills"] == 1 and len(res["kills"]) == 1
    assert summary["acknowledged_valid_events"] > 0
    assert res["failures"] == [], res["failures"]
    assert all(res["invariants"].values()), res["invariants"]
    assert store["missing"] == 0 and store["duplicates"] == 0 and store["unexpected"] == 0
    assert store["stored"] >= store["acknowledged_valid_distinct"] > 0
    assert summary["left_in_inbox_events"] == 0
    kill = res["kills"][0]
    assert kill["claimed_batches_at_kill"] > 0  # the kill took batches the worker was processing
    # processing started again, and what the dead server held was taken back, soon after the
    # restart (generous on a loaded machine, far below the 5-minute stale-claim wait it replaced)
    assert kill["draining_after_up_s"] is not None and kill["draining_after_up_s"] <= 90
    assert kill["reclaimed_after_up_s"] is not None and kill["reclaimed_after_up_s"] <= 90
    assert kill["claimed_done_after_up_s"] is not None  # and then processed
    assert proc.returncode == 0, proc.stderr[-3000:]
