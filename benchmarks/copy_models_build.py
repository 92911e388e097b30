"""How long the explicit copy-model step takes on a machine with no model cache: the complaint
classifiers and the fluency references (``models_fetch.ensure_copy_models``), each part timed
alone into an empty model store, English and Chinese. Data: the shared review data sets the
builders read (see ``adpilot.generation.tone`` and ``adpilot.scoring.fluency``).

    python benchmarks/copy_models_build.py   # -> benchmarks/results/copy_models_build.json
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from adpilot.artifacts import ModelStore
from adpilot.config import get_settings
from adpilot.datasets_fetch import DataSources
from adpilot.models_fetch import ensure_copy_models

OUT = Path(__file__).parent / "results" / "copy_models_build.json"


def main() -> None:
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        store = ModelStore(Path(folder))
        for part in ("complaint", "fluency"):
            started = time.perf_counter()
            status = ensure_copy_models(store, ("en", "zh"), parts=(part,),
                                        sources=DataSources.from_settings(get_settings()))[part]
            results[part] = {"seconds": round(time.perf_counter() - started, 1), "status": status}
    results["total_seconds"] = round(sum(r["seconds"] for r in results.values()), 1)
    OUT.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
