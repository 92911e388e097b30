"""Reference points for the attractiveness model: length alone, and a bag-of-words logistic
regression on the same pairs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp


def length_baseline(pairs: pd.DataFrame) -> float:
    """Accuracy of "the longer headline wins"."""
    longer = pairs["text_a"].str.len().to_numpy() > pairs["text_b"].str.len().to_numpy()
    return float(np.mean(longer == pairs["label"].to_numpy()))


def bow_baseline(train: pd.DataFrame, test: pd.DataFrame, C: float = 0.1) -> float:
    """Accuracy of logistic regression on binary word-count differences."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = CountVectorizer(min_df=3, binary=True).fit(pd.concat([train["text_a"],
                                                               train["text_b"]]))

    def diff(d: pd.DataFrame):
        return vec.transform(d["text_a"]) - vec.transform(d["text_b"])

    x, y = diff(train), train["label"].to_numpy()
    clf = LogisticRegression(C=C, max_iter=2000, fit_intercept=False).fit(
        sp.vstack([x, -x]), np.concatenate([y, 1 - y]))
    return float(np.mean((clf.predict_proba(diff(test))[:, 1] > 0.5) == test["label"].to_numpy()))
