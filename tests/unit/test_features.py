"""FeatureEncoder: categories coded by their share of "yes", unseen ones as NaN; frames and records agree."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shared import schema
from shared.data_validation import validate_csv
from shared.errors import InvalidInput
from shared.features import FeatureEncoder
from tests import samples


@pytest.fixture(scope="module")
def train_frame() -> pd.DataFrame:
    return validate_csv(samples.csv_bytes(samples.stratified_sample(1000, seed=2))).frame


@pytest.fixture(scope="module")
def encoder(train_frame: pd.DataFrame) -> FeatureEncoder:
    return FeatureEncoder.fit(train_frame, (train_frame["y"] == "yes").to_numpy())


def test_columns_follow_the_schema_and_only_categoricals_get_a_vocabulary(encoder: FeatureEncoder) -> None:
    assert encoder.columns == schema.FEATURES
    assert set(encoder.vocab) == set(schema.CATEGORICAL_FEATURES)


def test_categories_are_ordered_by_share_of_yes() -> None:
    frame = pd.DataFrame({name: [0] * 6 for name in schema.FEATURES})
    frame["poutcome"] = ["success", "success", "failure", "failure", "nonexistent", "nonexistent"]
    y = np.array([1, 1, 1, 0, 0, 0])
    codes = FeatureEncoder.fit(frame, y).vocab["poutcome"]
    assert codes["nonexistent"] < codes["failure"] < codes["success"]


def test_numbers_pass_through(encoder: FeatureEncoder, train_frame: pd.DataFrame) -> None:
    x = encoder.transform(train_frame)
    for name in schema.NUMERIC_FEATURES:
        j = encoder.columns.index(name)
        np.testing.assert_array_equal(x[:, j], train_frame[name].to_numpy(dtype=float))


def test_unseen_category_becomes_nan(encoder: FeatureEncoder, endpoint_records: list[dict]) -> None:
    record = dict(endpoint_records[0], job="astronaut")
    frame = pd.DataFrame([record, endpoint_records[1]])
    j = encoder.columns.index("job")
    x = encoder.transform(frame)
    assert np.isnan(x[0, j])
    assert not np.isnan(x[1, j])
    assert np.isnan(encoder.transform_records([record])[0, j])
    assert np.count_nonzero(np.isnan(x[0])) == 1, "only the unseen field is missing"
    assert encoder.unseen_categories(frame) == {"job": 1}


def test_transform_and_transform_records_agree(encoder: FeatureEncoder, train_frame: pd.DataFrame,
                                               endpoint_records: list[dict]) -> None:
    frame = train_frame.head(200)
    records = frame[list(schema.FEATURES)].to_dict("records")
    np.testing.assert_array_equal(encoder.transform(frame), encoder.transform_records(records))
    json_like = [*endpoint_records, dict(endpoint_records[1], marital="complicated", month="smarch")]
    np.testing.assert_array_equal(encoder.transform(pd.DataFrame(json_like)), encoder.transform_records(json_like))


def test_extra_columns_are_ignored(encoder: FeatureEncoder, train_frame: pd.DataFrame) -> None:
    np.testing.assert_array_equal(encoder.transform(train_frame), encoder.transform(train_frame.drop(columns=["y"])))


def test_excluded_columns_are_left_out(train_frame: pd.DataFrame) -> None:
    encoder = FeatureEncoder.fit(train_frame, (train_frame["y"] == "yes").to_numpy(), exclude=("duration", "month"))
    assert "duration" not in encoder.columns and "month" not in encoder.columns
    assert "month" not in encoder.vocab
    assert encoder.transform(train_frame.drop(columns=["duration", "month"])).shape == (len(train_frame), 18)
    with pytest.raises(InvalidInput, match="cannot exclude unknown column\\(s\\) salary"):
        FeatureEncoder.fit(train_frame, np.zeros(len(train_frame)), exclude=("salary",))


def test_without_columns_gives_the_full_matrix_less_those_columns(encoder: FeatureEncoder, train_frame: pd.DataFrame) -> None:
    gone = ["marital", "housing", "duration"]
    smaller = encoder.without(gone)
    assert smaller.columns == tuple(c for c in schema.FEATURES if c not in gone)
    assert set(smaller.vocab) == set(schema.CATEGORICAL_FEATURES) - set(gone)
    keep = [j for j, c in enumerate(encoder.columns) if c not in gone]
    np.testing.assert_array_equal(smaller.transform(train_frame), encoder.transform(train_frame)[:, keep])
    records = train_frame.head(3).to_dict("records")
    np.testing.assert_array_equal(smaller.transform_records(records), encoder.transform(train_frame.head(3))[:, keep])
