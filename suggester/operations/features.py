"""Group feature requests (기능제안) by meaning and tell customers when one has shipped.

A request joins the group whose centroid (the mean of its members' e5 vectors) is nearest,
when the cosine is at least `feature_similarity`; otherwise it starts a group. Character
bigrams would group "찜 목록 폴더" with "찜 알림"; the vectors group "폴더로 정리" with "폴더로
나눠서" although they share few characters. A draft for a request whose group is 반영 opens
with the line an editor wrote for it, and only then: no line, no promise.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from suggester.records.features import SHIPPED, FeatureGroup, FeatureRecords
from suggester.records.privacy import mask_personal_data
from suggester.records.store import Store
from suggester.reply.draft import Draft, Sentence

FEATURE_TYPE = "기능제안"


class FeatureDesk:
    """Group requests as they are logged; find the shipped group a new request belongs to."""

    def __init__(self, store: Store, *, similarity: float) -> None:
        self.records = FeatureRecords(store)
        self.similarity = similarity

    def nearest(self, vector: np.ndarray) -> tuple[FeatureGroup | None, float]:
        """The group whose centroid is nearest, if it is near enough, and the cosine."""
        best, best_score = None, self.similarity
        for group in self.records.groups():
            centroid = np.asarray(group.centroid, dtype=np.float32)
            score = float(vector @ centroid / (np.linalg.norm(centroid) or 1.0))
            if score >= best_score:
                best, best_score = group, score
        return best, best_score

    def observe(self, suggestion_id: str, inquiry: str, vector: np.ndarray,
                group: FeatureGroup | None) -> int:
        """Put a logged request into `group`, its nearest (a new one when None); return the id."""
        if group is None:
            return self.records.add(suggestion_id, representative=_masked(inquiry),
                                    vector=vector.tolist(), group_id=None)
        centroid = (np.asarray(group.centroid) * group.requests + vector) / (group.requests + 1)
        return self.records.add(suggestion_id, representative=group.representative,
                                vector=vector.tolist(), group_id=group.id,
                                centroid=centroid.tolist())

    @staticmethod
    def announcement(group: FeatureGroup | None) -> str | None:
        """The editor's line if `group`, a request's nearest, has shipped."""
        if group is None or group.status != SHIPPED or not group.announcement:
            return None
        return group.announcement


def announced(draft: Draft, line: str) -> Draft:
    """The draft with the editor's shipped-feature line as its first paragraph."""
    sentence = Sentence(text=line)
    return replace(draft, sentences=[sentence, *draft.sentences],
                   paragraphs=[[sentence], *draft.paragraphs])


def _masked(text: str) -> str:
    return mask_personal_data(text).text
