"""The CLI as a user runs it: exit codes, JSON output, no tracebacks, and `adpilot run`."""

from __future__ import annotations

import json
import subprocess
import sys

from adpilot.cli import main


def _run(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_ingest_reviews_json_on_real_file(shared_data, capsys, tmp_path):
    path = shared_data / "reviews" / "womens_clothing_ecommerce_reviews.csv"
    code, out, _ = _run(["ingest", "reviews", str(path), "--text-col", "Review Text",
                         "--rating-col", "Rating", "--product-col", "Clothing ID",
                         "--db", f"sqlite:///{tmp_path / 'a.db'}", "--json"], capsys)
    assert code == 0
    summary = json.loads(out)
    assert summary["read"] == 23486 and summary["quarantined"] == 845
    assert summary["kept"] + summary["quarantined"] == summary["read"]
    assert summary["encoding"] == "utf-8" and summary["reasons"] == {"empty text": 845}
    with open(summary["quarantine_file"], encoding="utf-8") as fh:
        assert fh.readline().strip() == "row,line,column,value,reason"
        assert sum(1 for _ in fh) == 845


def test_gbk_file_through_the_cli(tmp_path, capsys):
    path = tmp_path / "zh.csv"
    path.write_bytes("评论,评分\n质量很好，物流很快,5\n尺码偏大,3\n".encode("gbk"))
    code, out, _ = _run(["ingest", "reviews", str(path), "--text-col", "评论",
                         "--rating-col", "评分", "--dry-run", "--json"], capsys)
    assert code == 0
    summary = json.loads(out)
    assert summary["encoding"] == "gb18030" and summary["kept"] == 2


def test_missing_column_exit_2_without_traceback(tmp_path, capsys):
    path = tmp_path / "r.csv"
    path.write_text("id,comment\n1,hi\n", encoding="utf-8")
    code, out, err = _run(["ingest", "reviews", str(path), "--text-col", "Review Text"], capsys)
    assert code == 2 and out == ""
    assert "the text column 'Review Text' is missing; columns found: 'id', 'comment'" in err
    assert "Traceback" not in err


def test_errors_as_a_real_process(tmp_path):
    """The console script itself: exit code 2 and one clear line for each unusable file."""
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    for target, message in [(tmp_path / "missing.csv", "file not found"),
                            (empty, "the file is empty")]:
        proc = subprocess.run([sys.executable, "-m", "adpilot", "ingest", "reviews", str(target)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr and "Traceback" not in proc.stderr


def test_bad_ratings_are_reported_not_fatal(tmp_path, capsys):
    path = tmp_path / "r.csv"
    path.write_text("text,rating\ngood,5\nbad,five\nworse,9\n", encoding="utf-8")
    code, out, _ = _run(["ingest", "reviews", str(path), "--dry-run", "--json"], capsys)
    summary = json.loads(out)
    assert code == 0 and (summary["kept"], summary["quarantined"]) == (1, 2)


def test_run_on_builtin_sample(tmp_path, capsys):
    # --sentiment rating: the fine-tuned models are proven in tests/test_sentiment.py
    code, out, _ = _run(["run", "--out", str(tmp_path / "demo"), "--sentiment", "rating",
                         "--llm", "none", "--json"], capsys)
    assert code == 0
    summary = json.loads(out)
    reviews = summary["ingests"]["reviews"]
    assert reviews["read"] == reviews["kept"] + reviews["quarantined"]
    assert reviews["quarantined"] == 3  # the sample's deliberate bad rows
    assert summary["ingests"]["customers"]["kept"] == 40
    html = (tmp_path / "demo" / "report.html").read_text(encoding="utf-8")
    assert "Data overview" in html and "<svg" in html and "数据概览" in html
    code, out, _ = _run(["status", "--db", summary["db"], "--json"], capsys)
    assert json.loads(out)["counts"]["reviews"] == reviews["kept"]


def test_help_lists_commands(capsys):
    code, out, _ = _run(["--help"], capsys)
    assert code == 0 and "ingest" in out and "run" in out
