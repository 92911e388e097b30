"""``adpilot generate --products`` with the real local model: the in-process ``llamacpp``
backend and the default Qwen GGUF (the ``local_qwen`` fixture), real guardrails and the
scorecard's best-of-N ranking, and a resume that writes only what the output lacks.

Kept small (two products, one variant from two candidates each, one try per candidate, the sms
channel's short copy): four model calls in all; marked slow.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adpilot.cli import main

PRODUCTS = [
    {"id": "r1", "title": "Linen shirt", "category": "Tops", "price": 49.0, "currency": "USD",
     "description": "breathable linen shirt with a relaxed fit",
     "attributes": {"colour": "white", "material": "linen", "sizes": ["S", "M", "L"]}},
    {"id": "r2", "title": "Canvas tote", "category": "Bags", "language": "en",
     "description": "a roomy tote bag for books and lunch",
     "attributes": {"colour": "navy", "material": ["cotton", "canvas"]}},
]


def lines_of(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.slow
def test_real_model_catalogue_with_scorecard_guardrails_and_resume(local_qwen, shared_data,
                                                                    tmp_path, monkeypatch,
                                                                    capsys):
    monkeypatch.setenv("ADPILOT_DATA_DIR", str(shared_data))  # the guardrails' real models
    aud = tmp_path / "audience.json"
    aud.write_text(json.dumps({"description": "office workers who like natural fabrics"}))
    out = tmp_path / "copies.jsonl"

    def generate(records: list[dict]) -> dict:
        cat = tmp_path / f"catalogue-{len(records)}.jsonl"
        cat.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        code = main(["generate", "--products", str(cat), "--audience", str(aud), "--channel",
                     "sms", "--lang", "en", "-n", "1", "--best-of", "2", "--backend", "llamacpp",
                     "--model", str(local_qwen), "--max-attempts", "1", "--no-cache", "--out",
                     str(out), "--json"])
        captured = capsys.readouterr()
        assert code == 0, captured.err[-2000:]
        return json.loads(captured.out)

    # an earlier run left the first product's line (a run over the first record only) …
    first = generate(PRODUCTS[:1])
    assert (first["written"], first["new"], first["skipped"]) == (1, 1, 0), first
    first_line = out.read_bytes()
    # … and the run over the whole catalogue writes only the second
    second = generate(PRODUCTS)
    assert (second["read"], second["done_before"], second["new"], second["skipped"]) == (
        2, 1, 1, 0), second
    assert second["completion_tokens"] > 0  # the second product was generated, not copied
    assert out.read_bytes().startswith(first_line)  # the first line kept byte for byte

    lines = lines_of(out)
    assert [line["product_id"] for line in lines] == ["r1", "r2"]
    for line in lines:
        assert line["channel"] == "sms" and line["lang"] == "en" and line["candidates"] == 2
        (v,) = line["variants"]  # the better of two candidates by the scorecard
        assert v["text"].strip() and v["fields"]["text"] == v["text"]
        # guardrail results: a 1.5B model's copy may fail a check; each result is reported
        assert isinstance(v["violations"], list) and v["passed"] == (not v["violations"])
        scores = v["scores"]
        assert 0 <= scores["overall"] <= 1 and 0 < scores["fluency"] <= 1
        if not v["passed"]:  # the scorecard's compliance gate: a failing copy scores 0
            assert scores["compliance"] == scores["overall"] == 0
        assert line["passed"] == v["passed"] and v["tokens"]["completion"] > 0
