"""Copy for a whole catalogue (``adpilot generate --products``): one line per product through the
single-brief path (real prompts, guardrails, re-ask loop, scorecard), resumable from a partial
output file, bad records reported with file and line and skipped.

The LLM is the one external part: ``CatalogueLLM`` is a real backend class that answers each
product's prompt with that product's copy (a test double of the model only); the slow test runs
the real llama.cpp server with the Gemma 3 270M GGUF through the ``openai`` backend.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from adpilot.backends.llm import (
    Completion,
    GenerationParams,
    LLMBackend,
    Message,
    Usage,
    register_backend,
    unregister_backend,
)
from adpilot.cli import main
from adpilot.config import get_settings
from adpilot.datasets_fetch import DataSources
from adpilot.generation import Audience, CopyGenerator
from adpilot.usecases.catalogue import CopiesFile, generate_catalogue, read_catalogue

COPY = {  # what the "model" writes for a prompt naming this title
    "Linen shirt": "Breathable linen shirt with a relaxed fit for warm days.",
    "Wool scarf": "A soft merino wool scarf for cold mornings, now 39 USD.",
    "Canvas tote": "A roomy navy cotton canvas tote for books, lunch and more.",
    "Silk blouse": "A light silk blouse with pearl buttons for the office.",
    "连衣裙": "白色棉质连衣裙，透气清爽，轻松出门。",
}
GOOD = [
    {"id": "p1", "title": "Linen shirt", "category": "Tops",
     "description": "breathable linen, relaxed fit"},
    {"id": "p2", "title": "Wool scarf", "category": "Accessories", "price": 39.0,
     "currency": "USD", "description": "soft merino wool"},
    {"id": "p3", "title": "Canvas tote", "category": "Bags",
     "attributes": {"colour": "navy", "material": ["cotton", "canvas"]}},
    {"id": "p4", "title": "Silk blouse", "category": "Tops", "description": "silk",
     "attributes": {"buttons": "pearl"}},
]
AUDIENCE = Audience(description="office workers who like natural fabrics")


@pytest.fixture(scope="module")
def models_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def shared_model_cache(models_cache, monkeypatch):
    """One model cache for this module: the guardrails' complaint classifier is built once."""
    monkeypatch.setenv("ADPILOT_CACHE_DIR", str(models_cache))


class CatalogueLLM(LLMBackend):
    """Replies with the copy of the product whose title is in the prompt; text that is not
    JSON when no title matches (the model failing); records the titles it was asked about."""

    name = "catalogue-test"

    def __init__(self) -> None:
        self.asked: list[str] = []

    @property
    def model_id(self) -> str:
        return "catalogue-test"

    def complete(self, messages: Sequence[Message], params: GenerationParams) -> Completion:
        prompt = "\n".join(m.content for m in messages if m.role == "user")
        title = next((t for t in COPY if t in prompt), None)
        self.asked.append(title or "?")
        text = json.dumps({"text": COPY[title]}, ensure_ascii=False) if title else "no JSON here"
        return Completion(text, Usage(len(prompt) // 4, len(text) // 4), 0.01, "catalogue-test")


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def jsonl(records: list[dict]) -> list[str]:
    return [json.dumps(r, ensure_ascii=False) for r in records]


def lines_of(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def sources() -> DataSources:
    """Where the guardrail models' training data are, from the settings of the test."""
    return DataSources.from_settings(get_settings())


def run(llm, catalogue: Path, out: Path, **kw):
    gen = CopyGenerator(llm, cache=False, max_attempts=1)
    return generate_catalogue(gen, catalogue, AUDIENCE, kw.pop("channel", "social"),
                              kw.pop("lang", "en"), out=out, sources=sources(), **kw)


def test_jsonl_catalogue_one_line_per_product_with_guardrail_results(tmp_path):
    cat = write_jsonl(tmp_path / "catalogue.jsonl", jsonl(GOOD))
    llm, ticks = CatalogueLLM(), []
    summary = run(llm, cat, tmp_path / "copies.jsonl",
                  progress=lambda name, done, total: ticks.append((name, done, total)))
    out = lines_of(tmp_path / "copies.jsonl")
    assert [line["product_id"] for line in out] == ["p1", "p2", "p3", "p4"]
    for line, rec in zip(out, GOOD, strict=True):
        v = line["variants"][0]
        assert v["text"].startswith(COPY[rec["title"]][:20]) and v["fields"]["text"] == v["text"]
        assert v["passed"] is True and v["violations"] == [], v
        assert line["passed"] is True and line["best"] == 0 and line["channel"] == "social"
    assert (summary.read, summary.written, summary.new, len(summary.skipped)) == (4, 4, 4, 0)
    assert summary.passed == 4 and summary.completion_tokens > 0
    assert ticks[0] == ("products", 0, 4) and ticks[-1] == ("products", 4, 4)
    assert sorted(llm.asked) == sorted(r["title"] for r in GOOD)


def test_bad_records_are_reported_with_file_and_line_and_skipped(tmp_path):
    lines = jsonl(GOOD[:2]) + ['{"id": "p9", "title": "broken', "",
                               json.dumps({"title": "No id here"}),
                               json.dumps({"id": "p5", "title": "Linen shirt", "price": "cheap"}),
                               json.dumps({**GOOD[0], "title": "Linen shirt again"}),
                               json.dumps(["not", "an", "object"])] + jsonl(GOOD[2:])
    cat = write_jsonl(tmp_path / "catalogue.jsonl", lines)
    summary = run(CatalogueLLM(), cat, tmp_path / "copies.jsonl")
    where = {s.line: s.reason for s in summary.skipped}
    assert set(where) == {3, 5, 6, 7, 8}
    assert where[3].startswith("not valid JSON") and "id" in where[5]
    assert "price" in where[6] and "repeats line 1" in where[7] and "object" in where[8]
    assert all(s.path == str(cat) for s in summary.skipped)
    assert str(summary.skipped[0]) == f"{cat}:3: {where[3]}"
    assert [x["product_id"] for x in lines_of(tmp_path / "copies.jsonl")] == ["p1", "p2", "p3",
                                                                              "p4"]
    assert summary.read == summary.written + len(summary.skipped) == 9


def test_csv_catalogue_with_attributes_and_chinese(tmp_path):
    cat = tmp_path / "catalogue.csv"
    with cat.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "title", "category", "price", "attributes", "材质"])
        w.writerow(["z1", "连衣裙", "裙", "", json.dumps({"颜色": "白色"}, ensure_ascii=False), "棉"])
        w.writerow(["", "连衣裙", "裙", "", "", ""])  # no id
        w.writerow(["z2", "连衣裙", "裙", "", "{not json", ""])
    summary = run(CatalogueLLM(), cat, tmp_path / "copies.jsonl", lang="zh")
    assert [(s.line, "id" in s.reason or "attributes" in s.reason) for s in summary.skipped] == [
        (3, True), (4, True)]
    (line,) = lines_of(tmp_path / "copies.jsonl")
    assert line["product_id"] == "z1" and line["lang"] == "zh"
    assert line["variants"][0]["passed"], line["variants"][0]["violations"]
    assert "白色棉质连衣裙" in line["variants"][0]["text"]
    (rec,) = [r for r in read_catalogue(cat) if r.product is not None]
    assert rec.product.attributes == {"颜色": "白色", "材质": "棉"}  # extra column → attribute


def test_resume_after_a_partial_file_skips_written_products_and_cuts_the_half_line(tmp_path):
    cat = write_jsonl(tmp_path / "catalogue.jsonl", jsonl(GOOD))
    out = tmp_path / "copies.jsonl"
    run(CatalogueLLM(), cat, out)
    full = out.read_bytes()
    first, second, third = full.split(b"\n")[:3]
    out.write_bytes(first + b"\n" + second + b"\n" + third[: len(third) // 2])  # killed mid-write
    llm = CatalogueLLM()
    summary = run(llm, cat, out)
    assert summary.truncated and (summary.done_before, summary.new, summary.written) == (2, 2, 4)
    assert sorted(llm.asked) == ["Canvas tote", "Silk blouse"]  # only the missing products
    data = out.read_bytes()
    assert data.startswith(first + b"\n" + second + b"\n")  # earlier lines kept as they were
    ids = [x["product_id"] for x in lines_of(out)]
    assert sorted(ids) == ["p1", "p2", "p3", "p4"] and len(set(ids)) == 4
    again = CatalogueLLM()  # a third run has nothing to do
    done = run(again, cat, out)
    assert again.asked == [] and (done.done_before, done.new, done.truncated) == (4, 0, False)
    assert out.read_bytes() == data


def test_a_failed_product_is_not_written_and_is_retried_on_rerun(tmp_path):
    unknown = {"id": "p8", "title": "Mystery gadget"}  # the test model writes no JSON for it
    cat = write_jsonl(tmp_path / "catalogue.jsonl", jsonl([GOOD[0], unknown, GOOD[1]]))
    out = tmp_path / "copies.jsonl"
    summary = run(CatalogueLLM(), cat, out, concurrency=2)
    (failed,) = summary.skipped
    assert failed.line == 2 and failed.product_id == "p8"
    assert failed.reason.startswith("generation failed: StructuredOutputError")
    assert sorted(x["product_id"] for x in lines_of(out)) == ["p1", "p2"]
    llm = CatalogueLLM()
    again = run(llm, cat, out)
    assert llm.asked == ["?"] and again.done_before == 2 and len(again.skipped) == 1


def test_a_second_writer_is_refused_and_a_duplicate_write_raises(tmp_path):
    from adpilot.errors import InputError

    with CopiesFile(tmp_path / "c.jsonl") as copies:
        copies.write({"product_id": "a", "variants": []})
        with pytest.raises(InputError, match="already in the output"):
            copies.write({"product_id": "a", "variants": []})
        with pytest.raises(InputError, match="another run"):
            CopiesFile(tmp_path / "c.jsonl")
    assert CopiesFile(tmp_path / "c.jsonl").ids == {"a"}


def test_best_of_n_ranks_each_product_by_the_scorecard(tmp_path):
    from adpilot.scoring.scorecard import Scorecard

    cat = write_jsonl(tmp_path / "catalogue.jsonl", jsonl(GOOD[:2]))
    gen = CopyGenerator(CatalogueLLM(), cache=False, max_attempts=1,
                        scorecard=Scorecard(embedder="lsa"))
    generate_catalogue(gen, cat, AUDIENCE, "social", "en", out=tmp_path / "o.jsonl", n=1,
                       best_of=2, sources=sources())
    for line in lines_of(tmp_path / "o.jsonl"):
        assert line["candidates"] == 2 and len(line["variants"]) == 1
        assert 0 < line["variants"][0]["scores"]["overall"] <= 1


# --- CLI --------------------------------------------------------------------------------------

@pytest.fixture
def backend_name():
    register_backend("catalogue-test")(lambda **kw: CatalogueLLM())
    yield "catalogue-test"
    unregister_backend("catalogue-test")


def cli(tmp_path: Path, backend: str, *extra: str) -> int:
    aud = tmp_path / "audience.json"
    aud.write_text(json.dumps({"description": "office workers"}), encoding="utf-8")
    return main(["generate", "--audience", str(aud), "--channel", "social", "-n", "1",
                 "--best-of", "1", "--backend", backend, "--no-cache", *extra])


def test_cli_generate_products_json_summary(tmp_path, backend_name, capsys):
    cat = write_jsonl(tmp_path / "catalogue.jsonl", jsonl(GOOD[:3]) + ["{oops"])
    out = tmp_path / "copies.jsonl"
    assert cli(tmp_path, backend_name, "--products", str(cat), "--out", str(out), "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["read"], summary["written"], summary["skipped"]) == (4, 3, 1)
    assert summary["skipped_records"][0]["line"] == 4
    assert len(lines_of(out)) == 3
    assert cli(tmp_path, backend_name, "--products", str(cat), "--out", str(out)) == 0
    assert "4 read = 3 written (0 now, 3 before) + 1 skipped" in capsys.readouterr().out


def test_cli_needs_one_input_and_an_out_file(tmp_path, backend_name, capsys):
    cat = write_jsonl(tmp_path / "catalogue.jsonl", jsonl(GOOD[:1]))
    assert cli(tmp_path, backend_name, "--products", str(cat)) == 2
    assert "--out" in capsys.readouterr().err
    assert cli(tmp_path, backend_name) == 2


def test_cli_fewshot_uses_advertisegen_for_chinese(tmp_path, shared_data, data_sources,
                                                  monkeypatch, capsys):
    seen: list[str] = []

    class Recording(CatalogueLLM):
        def complete(self, messages, params):
            seen.append("\n".join(m.content for m in messages))
            return super().complete(messages, params)

    register_backend("fewshot-test")(lambda **kw: Recording())
    monkeypatch.setenv("ADPILOT_DATA_DIR", str(shared_data))
    cat = tmp_path / "catalogue.csv"
    cat.write_text("id,title,category,颜色\nz1,连衣裙,裙,白色\n", encoding="utf-8")
    try:
        code = cli(tmp_path, "fewshot-test", "--products", str(cat), "--out",
                   str(tmp_path / "o.jsonl"), "--lang", "zh", "--fewshot", "2")
    finally:
        unregister_backend("fewshot-test")
    assert code == 0, capsys.readouterr().err
    assert "AdvertiseGen" in capsys.readouterr().err
    assert seen and len(seen[0]) > 0
    without: list[str] = []
    gen = CopyGenerator(CatalogueLLM(), cache=False)
    from adpilot.usecases.studio import fewshot_libraries

    shots, _ = fewshot_libraries("zh", 2, data_sources)
    near = shots["zh"].nearest(next(read_catalogue(cat)).product, 2)
    assert len(near) == 2 and all(s.text in seen[0] for s in near)  # the examples are shown
    assert gen.shots == {} and not without


def test_cli_fewshot_without_the_data_says_what_is_missing(tmp_path, backend_name, monkeypatch,
                                                          capsys):
    monkeypatch.setenv("ADPILOT_DATA_DIR", str(tmp_path / "no-data"))
    monkeypatch.setenv("ADPILOT_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    cat = write_jsonl(tmp_path / "catalogue.jsonl", jsonl(GOOD[:1]))
    code = cli(tmp_path, backend_name, "--products", str(cat), "--out", str(tmp_path / "o.jsonl"),
               "--lang", "zh", "--fewshot", "2")
    err = capsys.readouterr().err
    assert code != 0 and "adgen_zh.jsonl" in err and "without --fewshot" in err
    assert not (tmp_path / "o.jsonl").exists()
