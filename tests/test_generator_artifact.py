"""Tuned generators carry the artifact document (kind ``generator``) beside ``adpilot.json``;
a folder with ``adpilot.json`` alone (older adpilot) still loads, is migrated, and the registry
lists it once."""

from __future__ import annotations

import json

import pytest

from adpilot.artifacts import METADATA_FILE, ModelStore, load_metadata, save_metadata
from adpilot.errors import ArtifactMismatchError
from adpilot.tuning.registry import ModelRegistry, register_tuned
from adpilot.tuning.train import load_meta, migrate_legacy, write_document

META = {"artifact": "copy-generator", "adpilot_version": "0.1.0", "method": "sft",
        "base": "gemma3-270m-q4_k_m", "data_hash": "feedbeef" * 8, "n_examples": 120,
        "config": {"method": "sft", "steps": 60, "lr": 2e-4}, "base_info": {"source": "x.gguf"},
        "metrics": {"train": {"steps": 60, "loss_last5": 1.23}},
        "created_at": "2026-12-01T10:00:00+00:00"}


def test_old_tuned_folder_loads_is_migrated_and_listed_once(tmp_path):
    store = ModelStore(tmp_path)
    folder = tmp_path / "gemma-sft"
    folder.mkdir()
    (folder / "adpilot.json").write_text(json.dumps(META))
    assert load_meta(folder)["method"] == "sft"  # format version 0: adpilot.json alone
    assert migrate_legacy(store) == [folder] and migrate_legacy(store) == []
    doc = load_metadata(folder)
    assert doc.kind == "generator" and doc.format_version == 1
    assert doc.data_hash == META["data_hash"] and doc.metrics == META["metrics"]
    assert doc.extra["base_model"] == META["base"] and doc.config["steps"] == 60

    reg = ModelRegistry(store)
    entry = register_tuned(folder, registry=reg)
    reg.discover()
    assert [e.ref for e in reg.list("generator")] == [entry.ref] == ["copy-sft:1"]


def test_a_document_of_another_kind_or_newer_format_is_refused(tmp_path):
    folder = tmp_path / "tuned"
    folder.mkdir()
    (folder / "adpilot.json").write_text(json.dumps(META))
    write_document(folder, META)
    assert (folder / METADATA_FILE).is_file() and load_meta(folder)["base"] == META["base"]
    save_metadata(folder, "generator", 9)
    with pytest.raises(ArtifactMismatchError, match="format version 9"):
        load_meta(folder)
    save_metadata(folder, "sentiment", 1)
    with pytest.raises(ArtifactMismatchError, match="not 'generator'"):
        load_meta(folder)
