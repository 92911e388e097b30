"""The complaint classifier and the fluency reference are trained only by their explicit
``ensure_…`` step, saved as :mod:`adpilot.artifacts` folders, checked on load; the scoring calls
without them run their stated fallbacks and train nothing; old files still load."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from adpilot import fallbacks
from adpilot.artifacts import METADATA_FILE, ModelStore, load_metadata, save_metadata
from adpilot.errors import ArtifactMismatchError
from adpilot.generation import tone

COMPLAINT = "The fabric is thin and cheap looking, very disappointed."
AD = "Soft linen that keeps you cool all summer."


def test_no_model_means_the_stated_fallback_and_no_training(tmp_path):
    store = ModelStore(tmp_path / "models")
    with fallbacks.recording() as used:
        p = tone.complaint_probability([COMPLAINT, AD], "en", store)
    assert set(np.unique(p)) <= {0.0, 1.0}  # the lexical check's 0/1
    fb = used["complaint guardrail (en)"]
    assert "no complaint model in" in fb.reason and "adpilot models fetch complaint" in fb.fix
    assert not (tmp_path / "models").exists()  # nothing was trained as a side effect


def test_ensure_trains_once_writes_the_document_and_the_check_uses_it(tmp_path, data_sources):
    store = ModelStore(tmp_path / "models")
    folder = tone.ensure_complaint_models(store, ["en"], sources=data_sources)["en"]
    assert folder == store.path("complaint", "en")
    meta = load_metadata(folder)
    assert meta.kind == "complaint" and meta.format_version == tone.FORMAT_VERSION
    assert meta.config["lang"] == "en" and meta.data_hash and meta.metrics["n_train"] > 1000
    stamp = (folder / tone.MODEL_FILE).stat().st_mtime_ns
    tone._CHECKED.clear()  # a new process: the data are read again, the hash matches
    tone.ensure_complaint_models(store, ["en"], sources=data_sources)
    assert (folder / tone.MODEL_FILE).stat().st_mtime_ns == stamp  # not refitted
    with fallbacks.recording() as used:
        p = tone.complaint_probability([COMPLAINT, AD], "en", store)
    assert not used and p[0] >= tone.THRESHOLD > p[1]
    assert [m.kind for m in store.list("complaint")] == ["complaint"]

    save_metadata(folder, "fluency", 1)  # another kind's document: refused with the reason
    with pytest.raises(ArtifactMismatchError, match="holds a 'fluency' artifact, not 'complaint'"):
        tone.load_complaint_model("en", store)


def test_old_pickled_dict_loads_and_is_migrated(tmp_path, data_sources):
    from adpilot.tuning.registry import ModelRegistry

    store = ModelStore(tmp_path)
    built = ModelStore(tmp_path / "built")
    tone.ensure_complaint_models(built, ["en"], sources=data_sources)  # fitted once, then copied
    model = tone.load_complaint_model("en", built)
    with open(tmp_path / "complaint-en.pkl", "wb") as fh:  # what an older adpilot wrote
        pickle.dump({"data_hash": "0123456789abcdef", "model": model}, fh)
    assert store.list() == []
    assert store.migrate_legacy() == [store.path("complaint", "en")]
    assert not (tmp_path / "complaint-en.pkl").exists()
    doc = json.loads((store.path("complaint", "en") / METADATA_FILE).read_text())
    assert doc["kind"] == "complaint" and doc["data_hash"] == "0123456789abcdef"
    again = tone.load_complaint_model("en", store)
    assert (again.predict_proba([COMPLAINT]) == model.predict_proba([COMPLAINT])).all()
    reg = ModelRegistry(tmp_path)
    assert [e.kind for e in reg.discover()] == ["complaint"]


def test_fluency_reference_is_built_only_by_its_ensure_step(tmp_path, data_sources):
    from adpilot.scoring.fluency import ensure_reference_lms, reference_dir, reference_lm

    store = ModelStore(tmp_path / "models")
    with fallbacks.recording() as used:
        fallback = reference_lm("zh", store=store)
    assert "no reference LM in" in used["fluency (zh)"].reason
    assert not reference_dir("zh", store=store).exists()
    folder = ensure_reference_lms(store, ["zh"], sources=data_sources)["zh"]
    assert load_metadata(folder).kind == "fluency"
    with fallbacks.recording() as used:
        built = reference_lm("zh", store=store)
    assert not used and built.vocab_size_ > fallback.vocab_size_
