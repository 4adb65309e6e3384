"""A small real blend (LightGBM + logistic regression) and client-list CSVs for the batch tests."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from shared import schema
from shared.features import FeatureEncoder
from shared.model import BankMarketingModel, Member
from tests import samples


@cache
def _model() -> BankMarketingModel:
    frame = samples.stratified_sample(2000, seed=3)
    y = (frame[schema.TARGET] == schema.POSITIVE).to_numpy(dtype=int)
    encoder = FeatureEncoder.fit(frame, y)
    x = encoder.transform(frame)
    boosted = LGBMClassifier(n_estimators=40, num_leaves=15, verbose=-1, random_state=0).fit(x, y)
    linear = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    return BankMarketingModel(encoder=encoder, members=[Member("lgbm", 0.7, boosted), Member("lrl1", 0.3, linear)])


def tiny_model() -> BankMarketingModel:
    """The same fitted blend each call (fit once per session)."""
    return _model()


def clients(rows: int, seed: int = 0) -> pd.DataFrame:
    """`rows` clients drawn with replacement from the shipped data, as text, without the target, plus a client id."""
    frame = samples.shipped_frame().drop(columns=[schema.TARGET])
    picked = frame.sample(n=rows, replace=True, random_state=seed).reset_index(drop=True)
    picked.insert(0, "client_id", [f"c{i:06d}" for i in range(rows)])
    return picked


def expected_proba(model: BankMarketingModel, frame: pd.DataFrame) -> np.ndarray:
    return model.predict_proba(frame)
