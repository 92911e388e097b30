"""Tuning the copy generator end to end on a tiny model built from a config: task data from the
Upworthy file and from a real store, LoRA SFT, DPO on top, evaluation, registry, promotion and
`adpilot generate --backend transformers` serving the promoted model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("peft")
pytest.importorskip("transformers")

from adpilot.cli import main  # noqa: E402
from adpilot.errors import ConfigError, InputError, MissingDependencyError  # noqa: E402
from adpilot.generation import channel_spec  # noqa: E402
from adpilot.generation.prompts import build_prompt  # noqa: E402
from adpilot.tuning import data as td  # noqa: E402
from adpilot.tuning.base import GENERIC_TEMPLATE, ensure_chat_template, resolve_base  # noqa: E402
from adpilot.tuning.train import TuneConfig, encode, perplexity, tune  # noqa: E402


@pytest.fixture(scope="module")
def upworthy(shared_data) -> pd.DataFrame:
    from adpilot.datasets import load_dataset

    return load_dataset("upworthy", shared_data / "copy" / "upworthy_headline_tests.csv"
                        ).tables["upworthy"]


@pytest.fixture(scope="module")
def sft_rows(upworthy) -> list[dict]:
    train, _ = td.split_upworthy(upworthy)
    return td.upworthy_sft(train[train["clickability_test_id"].isin(
        train["clickability_test_id"].unique()[:120])])


def tiny_chat_model(directory: Path, texts: list[str]) -> Path:
    """A random-weight GPT-2 (2 layers, 32 wide) with a byte-level BPE tokenizer trained here on
    the examples' own text, and a chat template: real code paths in well under a second."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1200, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")
    fast.chat_template = GENERIC_TEMPLATE
    fast.save_pretrained(directory)
    # embeddings drawn wide (std 0.5, not 0.02): the tied output layer sits behind a LayerNorm, so
    # only large embeddings let a LoRA adapter make the next token sharply likely
    cfg = GPT2Config(vocab_size=fast.vocab_size, n_positions=2048, n_embd=32, n_layer=2, n_head=2,
                     initializer_range=0.5,
                     eos_token_id=fast.eos_token_id, bos_token_id=fast.eos_token_id)
    GPT2LMHeadModel(cfg).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory, sft_rows) -> Path:
    texts = [m["content"] for r in sft_rows[:40] for m in r["messages"]]
    texts += [r["completion"] for r in sft_rows] + ["<|user|> <|system|> <|assistant|>"]
    return tiny_chat_model(tmp_path_factory.mktemp("tiny-base"), texts * 3)


# --- data preparation ----------------------------------------------------------------------------

def test_upworthy_examples_use_the_generators_prompt(upworthy, sft_rows):
    row = sft_rows[0]
    brief, brand = td.brief_of(row)
    expected = build_prompt(brief.product, brief.audience, channel_spec("social", "en"), brand)
    assert row["messages"] == [m.as_dict() for m in expected.messages]
    assert row["messages"][0]["content"].startswith("You write marketing copy for Upworthy")
    target = json.loads(row["completion"])["text"]
    # the target is the test's best headline by CTR, among the brief's references
    arms = td.upworthy_arms(upworthy[upworthy["clickability_test_id"] == brief.id])
    assert target == arms.sort_values("ctr").iloc[-1]["text"] and target in brief.references
    assert 40 <= len(target) <= 200


def test_upworthy_dpo_pairs_winner_over_loser_and_split_by_week(upworthy):
    train, held = td.split_upworthy(upworthy)
    assert train["test_week"].max() < td.UPWORTHY_WEEK_SPLIT <= held["test_week"].min()
    some = train[train["clickability_test_id"].isin(train["clickability_test_id"].unique()[:150])]
    pairs = td.upworthy_dpo(some, min_z=1.0)
    assert pairs and all(p["z"] >= 1.0 for p in pairs)
    arms = td.upworthy_arms(some).set_index(["test_id", "text"])["ctr"]
    for p in pairs[:20]:
        win, lose = json.loads(p["chosen"])["text"], json.loads(p["rejected"])["text"]
        assert arms[(p["id"], win)] > arms[(p["id"], lose)]


def test_store_campaigns_give_winners_and_pairs(store):
    from adpilot.optimization.campaigns import Campaigns

    camps = Campaigns(store, seed=0)
    copies = {"A": {"text": "Soft linen shirts for warm days. Easy care, made to last."},
              "B": {"text": "Our linen shirt: breathable and comfortable every day."}}
    cid = camps.create("Linen", ["A", "B"], channel="sms", policy="fixed",
                       audience={"description": "summer shoppers"}, copies=copies)
    for i in range(200):
        camps.decide(f"u{i}", cid)
    camps.flush()
    log = camps.decisions(cid)
    t0 = pd.Timestamp(log["time"].min()) + pd.Timedelta(minutes=1)
    rows = [{"event_id": f"i{k}", "campaign": cid, "variant": r.variant, "user_id": r.user_id,
             "channel": "sms", "type": "impression", "time": str(t0)}
            for k, r in enumerate(log.itertuples())]
    # variant A gets 40 % clicks, B 5 %: a clear winner
    rows += [{"event_id": f"c{k}", "campaign": cid, "variant": r.variant, "user_id": r.user_id,
              "channel": "sms", "type": "click", "time": str(t0)}
             for k, r in enumerate(log.itertuples()) if k % (3 if r.variant == "A" else 20) == 0]
    camps.ingest_events(pd.DataFrame(rows))
    sft = td.campaign_sft(store)
    assert len(sft) == 1 and json.loads(sft[0]["completion"]) == copies["A"]
    assert "summer shoppers" in sft[0]["messages"][1]["content"]
    assert "a marketing SMS" in sft[0]["messages"][1]["content"]
    dpo = td.campaign_dpo(store)
    assert len(dpo) == 1 and json.loads(dpo[0]["chosen"]) == copies["A"]
    assert json.loads(dpo[0]["rejected"]) == copies["B"] and dpo[0]["z"] > 2


def test_jsonl_round_trip_and_bad_input(tmp_path, sft_rows):
    path = td.write_jsonl(sft_rows[:3], tmp_path / "x.jsonl")
    assert td.read_jsonl(path) == sft_rows[:3] and td.kind_of(sft_rows[:3]) == "sft"
    assert td.data_hash(sft_rows[:3]) != td.data_hash(sft_rows[1:4])
    (tmp_path / "bad.jsonl").write_text('{"messages": []}\nnot json\n')
    with pytest.raises(InputError, match="line 2 is not valid JSON"):
        td.read_jsonl(tmp_path / "bad.jsonl")


# --- configuration and dependencies --------------------------------------------------------------

def test_config_is_checked_with_one_message_form():
    with pytest.raises(ConfigError, match="'method' parameter of TuneConfig must be 'sft' or 'dpo'. "
                                          "Got 'ppo'"):
        TuneConfig(method="ppo")
    with pytest.raises(ConfigError, match="'batch_size' parameter of TuneConfig must be a multiple"):
        TuneConfig(batch_size=5, micro_batch=2)


def test_missing_peft_names_the_extra(monkeypatch):
    from adpilot.deps import require

    monkeypatch.setitem(sys.modules, "peft", None)  # what an environment without peft looks like
    with pytest.raises(MissingDependencyError, match=r"adpilot\[tune\]"):
        require("peft", feature="fine-tuning")


def test_unknown_base_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="unknown base model"):
        resolve_base("no-such-model", cache_dir=tmp_path)
    with pytest.raises(InputError, match="GGUF file not found"):
        resolve_base(str(tmp_path / "missing.gguf"), cache_dir=tmp_path)
    with pytest.raises(TypeError, match="needs cache_dir= or store="):  # no settings fallback
        resolve_base("no-such-model")


def test_chat_encoding_matches_what_the_backend_sends(tiny_base, sft_rows):
    from transformers import AutoTokenizer

    from adpilot.backends.llm.base import Message
    from adpilot.backends.llm.hf import TransformersBackend

    tok = AutoTokenizer.from_pretrained(tiny_base)
    ensure_chat_template(tok)
    row = sft_rows[0]
    prompt_ids, reply_ids = encode(tok, row["messages"], row["completion"], 4096)
    served = TransformersBackend._prompt(None, tok, [Message(**m) for m in row["messages"]])
    assert prompt_ids == tok(served)["input_ids"]
    assert reply_ids[-1] == tok.eos_token_id  # the model learns to stop after the JSON
    assert tok.decode(reply_ids[:-1]) == row["completion"]


# --- the whole path --------------------------------------------------------------------------------

def test_sft_dpo_registry_promote_and_generate(tmp_path, tiny_base, sft_rows, upworthy, capsys):
    from adpilot.artifacts import ModelStore
    from adpilot.config import get_settings
    from adpilot.scoring.attractiveness import AttractivenessModel, default_model_dir
    from adpilot.scoring.pairs import arms_from_upworthy, make_pairs
    from adpilot.tuning.registry import ModelRegistry

    one = sft_rows[:1]  # the tiny model memorises one reply, so generation yields valid JSON
    data = td.write_jsonl(one, tmp_path / "sft.jsonl")
    before = perplexity(tiny_base, one, device="cpu")["perplexity"]
    code = main(["tune", "copy", "--method", "sft", "--data", str(data), "--base", str(tiny_base),
                 "--out", str(tmp_path / "sft"), "--steps", "300", "--batch-size", "1",
                 "--lr", "0.03", "--lora-r", "16", "--device", "cpu", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["registry"] == "copy-sft:1" and out["method"] == "sft"
    train = out["metrics"]["train"]
    assert train["steps"] == 300 and train["loss_last5"] < train["loss_first5"]
    assert train["device"] == "cpu" and train["peak_rss_mb"] > 0
    sft_dir = tmp_path / "sft"
    assert (sft_dir / "config.json").is_file() and (sft_dir / "adapter" / "adapter_config.json").is_file()
    assert perplexity(sft_dir, one, device="cpu")["perplexity"] < before / 5

    # DPO on top of the SFT model: its reference is the SFT model (adapter switched off)
    dpo_rows = [{**one[0], "chosen": one[0]["completion"],
                 "rejected": json.dumps({"text": "Click here now for this one weird story!!"})}]
    del dpo_rows[0]["completion"]
    dpo_data = td.write_jsonl(dpo_rows, tmp_path / "dpo.jsonl")
    code = main(["tune", "copy", "--method", "dpo", "--data", str(dpo_data), "--base",
                 str(sft_dir), "--out", str(tmp_path / "dpo"), "--steps", "10", "--batch-size", "1",
                 "--lr", "0.002", "--device", "cpu", "--json"])
    dpo = json.loads(capsys.readouterr().out)
    assert code == 0 and dpo["registry"] == "copy-dpo:1" and dpo["base"] == str(sft_dir)
    d = dpo["metrics"]["train"]  # the preferred reply gains on the rejected one
    assert d["loss_last5"] < d["loss_first5"] and d["logratio_margin_last20"] > 0
    with pytest.raises(ConfigError, match="holds SFT examples but the method is 'dpo'"):
        tune(one, tiny_base, tmp_path / "x", TuneConfig(method="dpo", steps=1, batch_size=1,
                                                       micro_batch=1))

    # evaluation against the base, judged by a real attractiveness model (LSA embedder: fast)
    pairs = make_pairs(arms_from_upworthy(upworthy.head(3000)))
    AttractivenessModel(embedder="lsa", finetune_epochs=0).fit(pairs).save(
        default_model_dir(ModelStore(get_settings().models_dir)))
    briefs = td.write_jsonl(one * 2, tmp_path / "briefs.jsonl")
    code = main(["tune", "eval", "--model", str(sft_dir), "--briefs", str(briefs), "-n", "2",
                 "--ppl-n", "2", "--max-attempts", "1", "--max-tokens", "120", "--temperature", "0",
                 "--device", "cpu", "--json"])
    report = json.loads(capsys.readouterr().out)
    s = report["summary"]
    assert code == 0 and s["perplexity_tuned"] < s["perplexity_base"], report["copies"]["tuned"]
    assert s["tuned_valid_json_rate"] == 1.0 and s["briefs"] == 2, report["copies"]["tuned"]
    assert s["win_rate"]["n"] + report["judge"]["ties"] == 2
    assert 0 <= s["tuned_bleu"] <= 1 and s["tuned_rouge_l"] > 0.5  # it reproduces a reference
    assert report["registry"] == "copy-sft:1"
    registered = ModelRegistry(get_settings().models_dir).get("copy-sft:1")
    assert registered.metrics["eval"]["perplexity_tuned"] == s["perplexity_tuned"]

    # promote the SFT model: the transformers backend asked for without a model serves it (the
    # path `adpilot generate --backend transformers` takes); greedy, so the memorised reply comes
    # back exactly (the CLI samples at 0.7, too loose for this tiny model)
    from adpilot.generation import CopyGenerator
    from adpilot.usecases.llm import build_backend

    assert main(["models", "promote", "copy-sft:1"]) == 0
    capsys.readouterr()
    backend = build_backend("transformers", models_dir=get_settings().models_dir)
    assert backend.model_id == f"transformers:{sft_dir.resolve()}"
    brief, brand = td.brief_of(one[0])
    gen = CopyGenerator(backend, brand=brand, cache=False, max_attempts=1, temperature=0,
                        max_tokens=120).generate(brief.product, brief.audience, "social", "en")
    assert gen.backend == backend.model_id
    # the tuned model's headline, as the generator repairs it (the channel's call to action
    # is appended when the copy has none)
    assert gen.variants[0].text.startswith(json.loads(one[0]["completion"])["text"])


def test_generate_without_a_promoted_model_says_what_to_do(tmp_path, capsys):
    (tmp_path / "p.json").write_text(json.dumps({"id": "p1", "title": "Linen shirt"}))
    (tmp_path / "a.json").write_text(json.dumps({"description": "shoppers"}))
    code = main(["generate", "--backend", "transformers", "--product", str(tmp_path / "p.json"),
                 "--audience", str(tmp_path / "a.json"), "--channel", "sms"])
    assert code == 2 and "no generator is promoted" in capsys.readouterr().err


def test_wilson_win_rate_counts_failures_as_losses():
    from adpilot.tuning.evaluate import win_rate

    class Judge:  # a small real scorer passed in: the longer copy wins, so outcomes are known
        @staticmethod
        def score(texts):
            return np.array([len(t) for t in texts], float)

    tuned = [{"id": i, "valid": v, "text": t} for i, v, t in
             [("a", True, "longer text"), ("b", True, "x"), ("c", False, None), ("d", True, "yy")]]
    base = [{"id": i, "valid": v, "text": t} for i, v, t in
            [("a", True, "short"), ("b", True, "longer"), ("c", True, "z"), ("d", False, None)]]
    r = win_rate(tuned, base, Judge())
    assert (r["wins"], r["losses"], r["ties"]) == (2, 2, 0)
    assert r["win_rate"]["rate"] == 0.5 and r["win_rate"]["n"] == 4
    lo, hi = r["win_rate"]["ci95"]
    assert lo < 0.5 < hi and r["both_valid"]["briefs"] == 2
