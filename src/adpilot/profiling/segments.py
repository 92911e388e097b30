"""Segments: k-means on profile features (+ embedding components), with the number of segments
chosen from the data (silhouette), stable ids, and readable descriptions in English and Chinese.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from adpilot.data import columns as C
from adpilot.errors import NotFittedError
from adpilot.profiling.aspects import aspect_labels

# Interpretable features and how to say "this segment is high/low on it" (en, zh).
_TRAITS = {
    C.AGE: ("older (avg {v:.0f} vs {o:.0f})", "younger (avg {v:.0f} vs {o:.0f})",
            "年龄偏大（平均{v:.0f}岁，整体{o:.0f}岁）", "更年轻（平均{v:.0f}岁，整体{o:.0f}岁）"),
    "frequency": ("frequent buyers ({v:.1f} orders vs {o:.1f})",
                  "few orders ({v:.1f} vs {o:.1f})",
                  "购买频繁（{v:.1f}单，整体{o:.1f}单）", "购买较少（{v:.1f}单，整体{o:.1f}单）"),
    "recency_days": ("lapsed (last order {v:.0f} days ago vs {o:.0f})",
                     "recently active ({v:.0f} days since last order vs {o:.0f})",
                     "久未购买（{v:.0f}天，整体{o:.0f}天）", "近期活跃（{v:.0f}天前购买，整体{o:.0f}天）"),
    "monetary": ("high spenders ({v:,.0f} vs {o:,.0f})", "low spend ({v:,.0f} vs {o:,.0f})",
                 "高消费（{v:,.0f}，整体{o:,.0f}）", "低消费（{v:,.0f}，整体{o:,.0f}）"),
    "sentiment_mean": ("positive reviewers ({v:+.2f} vs {o:+.2f})",
                       "negative reviewers ({v:+.2f} vs {o:+.2f})",
                       "评价积极（{v:+.2f}，整体{o:+.2f}）", "评价消极（{v:+.2f}，整体{o:+.2f}）"),
    "n_reviews": ("write many reviews ({v:.1f} vs {o:.1f})", "rarely review ({v:.1f} vs {o:.1f})",
                  "评论多（{v:.1f}条，整体{o:.1f}条）", "很少评论（{v:.1f}条，整体{o:.1f}条）"),
}


def _aspect_traits() -> dict[str, tuple[str, str, str, str]]:
    en, zh = aspect_labels("en"), aspect_labels("zh")
    return {f"aspect_{a}": (f"happy with {en[a]} ({{v:+.2f}} vs {{o:+.2f}})",
                            f"unhappy with {en[a]} ({{v:+.2f}} vs {{o:+.2f}})",
                            f"满意{zh[a]}（{{v:+.2f}}，整体{{o:+.2f}}）",
                            f"不满意{zh[a]}（{{v:+.2f}}，整体{{o:+.2f}}）") for a in en}


def _category_trait(col: str) -> tuple[str, str, str, str]:
    name = col.removeprefix("cat_")
    return (f"buy {name} ({{v:.0%}} vs {{o:.0%}})", f"rarely buy {name} ({{v:.0%}} vs {{o:.0%}})",
            f"偏好{name}（{{v:.0%}}，整体{{o:.0%}}）", f"少买{name}（{{v:.0%}}，整体{{o:.0%}}）")


@dataclass
class SegmentModel:
    """Segments users. ``k=None`` chooses k in ``k_range`` by silhouette on a seeded sample.

    Same data + same seed → same segments with the same ids (S1 is the largest segment).
    """

    k: int | None = None
    k_range: tuple[int, int] = (2, 8)
    seed: int = 0
    embedding_components: int = 8
    silhouette_sample: int = 5000
    features_: list[str] = field(default_factory=list, init=False)
    k_: int = field(default=0, init=False)
    silhouettes_: dict[int, float] = field(default_factory=dict, init=False)

    def _features(self, profiles: pd.DataFrame) -> pd.DataFrame:
        cols = [c for c in (C.AGE, "frequency", "recency_days", "monetary", "sentiment_mean",
                            "n_reviews") if c in profiles]
        cols += [c for c in profiles.columns if c.startswith(("aspect_", "cat_"))]
        feats = profiles[cols].apply(pd.to_numeric, errors="coerce").astype(float)
        for c in ("frequency", "monetary", "n_reviews", "recency_days"):
            if c in feats:  # heavy-tailed counts and money: compare on a log scale
                feats[c] = np.log1p(feats[c].clip(lower=0))
        fill = {c: 0.0 for c in feats if c.startswith(("aspect_", "cat_"))}  # no opinion / none
        feats = feats.fillna(fill)
        return feats.fillna(feats.median()).fillna(0.0)

    def fit_predict(self, profiles: pd.DataFrame,
                    embeddings: np.ndarray | None = None) -> pd.Series:
        """Fit on ``profiles`` (one row per user) and return segment ids ``S1..Sk``."""
        from sklearn.cluster import KMeans
        from sklearn.decomposition import PCA
        from sklearn.metrics import silhouette_score
        from sklearn.preprocessing import StandardScaler

        feats = self._features(profiles)
        self.features_ = list(feats.columns)
        x = StandardScaler().fit_transform(feats.to_numpy()) if len(feats.columns) else np.zeros(
            (len(feats), 0))
        if embeddings is not None and len(embeddings) == len(profiles) and embeddings.shape[1]:
            n = min(self.embedding_components, embeddings.shape[1], max(1, len(profiles) - 1))
            comps = PCA(n, random_state=self.seed).fit_transform(embeddings)
            comps = comps / (comps.std(axis=0, keepdims=True) + 1e-9)
            x = np.hstack([x, comps * 0.5])  # embeddings inform, profile traits lead
        n_users = len(x)
        lo, hi = self.k_range
        candidates = [self.k] if self.k else list(range(lo, min(hi, n_users - 1) + 1))
        if not candidates or n_users < 3:
            labels = np.zeros(n_users, dtype=int)
            self.k_ = 1
        else:
            rng = np.random.default_rng(self.seed)
            sample = (rng.choice(n_users, self.silhouette_sample, replace=False)
                      if n_users > self.silhouette_sample else np.arange(n_users))
            best = None
            for k in candidates:
                km = KMeans(k, n_init=10, random_state=self.seed).fit(x)
                score = (silhouette_score(x[sample], km.labels_[sample])
                         if len(set(km.labels_[sample])) > 1 else -1.0)
                self.silhouettes_[k] = round(float(score), 4)
                if best is None or score > best[0] + 1e-9:
                    best = (score, k, km.labels_)
            _, self.k_, labels = best
        # Stable ids: order by size (desc), ties by the smallest member position.
        sizes = pd.Series(labels).value_counts()
        first = pd.Series(np.arange(n_users)).groupby(labels).min()
        order = sorted(sizes.index, key=lambda c: (-sizes[c], first[c]))
        mapping = {c: f"S{i + 1}" for i, c in enumerate(order)}
        self.labels_ = pd.Series([mapping[c] for c in labels], index=profiles.index, name=C.SEGMENT)
        self._feats = feats
        return self.labels_

    def describe(self, *, top: int = 3) -> pd.DataFrame:
        """One row per segment: size, share, top distinguishing traits (en/zh), a short name."""
        if not hasattr(self, "labels_"):
            raise NotFittedError("SegmentModel is not fitted yet; call fit_predict first.")
        raw = self._feats.copy()
        for c in ("frequency", "monetary", "n_reviews", "recency_days"):
            if c in raw:
                raw[c] = np.expm1(raw[c])  # describe in natural units
        overall_mean, overall_std = raw.mean(), raw.std(ddof=0).replace(0, np.nan)
        traits = {**_TRAITS, **_aspect_traits()}
        rows = []
        for seg, members in raw.groupby(self.labels_.to_numpy(), sort=True):
            mean = members.mean()
            z = ((mean - overall_mean) / overall_std).dropna()
            picked = z.abs().sort_values(ascending=False).index[:top]
            en, zh = [], []
            for col in picked:
                tpl = traits.get(col) or (_category_trait(col) if col.startswith("cat_") else None)
                if tpl is None:
                    continue
                hi = z[col] > 0
                en.append((tpl[0] if hi else tpl[1]).format(v=mean[col], o=overall_mean[col]))
                zh.append((tpl[2] if hi else tpl[3]).format(v=mean[col], o=overall_mean[col]))
            rows.append({C.SEGMENT: seg, "size": len(members),
                         "share": len(members) / len(raw),
                         "name": en[0].split(" (")[0] if en else "typical customers",
                         "name_zh": zh[0].split("（")[0] if zh else "普通客户",
                         "description": "; ".join(en), "description_zh": "；".join(zh)})
        out = pd.DataFrame(rows)
        return out.sort_values(C.SEGMENT, key=lambda s: s.str[1:].astype(int)).reset_index(
            drop=True)
