"""TF-IDF + logistic-regression sentiment classifiers: the baseline and the lexical half of the
shipped sentiment ensembles (see :mod:`adpilot.profiling.sentiment`)."""

from __future__ import annotations

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_union


def reference_baseline(lang: str) -> Pipeline:
    """The published reference setup: word TF-IDF + LR (English), character TF-IDF + LR (Chinese).

    Used only for comparison tables; it has the default settings the reference numbers quote.
    """
    if lang == "zh":
        vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 1), sublinear_tf=True)
    else:
        vec = TfidfVectorizer(sublinear_tf=True)
    return Pipeline([("tfidf", vec), ("lr", LogisticRegression(max_iter=2000))])


def tfidf_classifier(lang: str, *, C: float | None = None, seed: int = 42,
                     char_ngrams: bool = True) -> Pipeline:
    """A stronger lexical model: word 1-2 grams + character n-grams (English; ``char_ngrams=False``
    keeps the words only: several times cheaper to apply), character 1-3 grams (Chinese, which has
    no spaces to split words on), sublinear TF, L2 logistic regression."""
    if lang == "zh":
        features = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2)
        C = 4.0 if C is None else C
    else:
        words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
        features = make_union(
            words,
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=3,
                            max_features=200_000),
        ) if char_ngrams else words
        C = 2.0 if C is None else C
    return Pipeline([("tfidf", features),
                     ("lr", LogisticRegression(C=C, max_iter=3000, random_state=seed))])
