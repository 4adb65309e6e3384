"""Registering a data file: every kind of bad file is refused with a clear message and leaves nothing behind;
good files are registered once per content, with a fixed stratified holdout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shared import schema
from shared.adapters.local.datasets import LocalDatasetStore
from shared.data_validation import validate_csv
from shared.dataset_registration import content_hash, holdout_indices, load_frame, register_dataset
from shared.errors import InvalidDataset
from tests import samples
from tests.conftest import WriteCsv
from tests.fakes import InMemoryDatasetStore


@pytest.fixture
def local_store(tmp_path: Path) -> LocalDatasetStore:
    return LocalDatasetStore(tmp_path / "home" / "datastore" / "datasets", tmp_path / "home" / "catalog.db")


@pytest.fixture(params=["in-memory", "local"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> InMemoryDatasetStore | LocalDatasetStore:
    if request.param == "in-memory":
        return InMemoryDatasetStore()
    return LocalDatasetStore(tmp_path / "home" / "datastore" / "datasets", tmp_path / "home" / "catalog.db")


def assert_refused(store: LocalDatasetStore, path: Path, *fragments: str) -> InvalidDataset:
    """Registration raises InvalidDataset whose text holds every fragment, and nothing is stored."""
    with pytest.raises(InvalidDataset) as caught:
        register_dataset(store, path, name="bankmarketing")
    text = str(caught.value)
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in error message:\n{text}"
    assert store.list() == []
    leftovers = [p for p in store.root.rglob("*") if p.is_file()] if store.root.exists() else []
    assert leftovers == [], f"files left in the datastore: {leftovers}"
    # a fresh store on the same catalog sees nothing either (nothing was committed)
    assert LocalDatasetStore(store.root, store.catalog).list() == []
    return caught.value


# --- the kinds of bad file -------------------------------------------------------------------------------


def test_missing_column_is_named(local_store: LocalDatasetStore, valid_frame: pd.DataFrame, write_csv: WriteCsv) -> None:
    path = write_csv(valid_frame.drop(columns=["euribor3m"]))
    error = assert_refused(local_store, path, "missing column(s): euribor3m", "add them")
    assert not any("unexpected" in d for d in error.details)


def test_missing_target_is_named(local_store: LocalDatasetStore, valid_frame: pd.DataFrame, write_csv: WriteCsv) -> None:
    assert_refused(local_store, write_csv(valid_frame.drop(columns=["y"])), "missing column(s): y")


def test_unexpected_column_is_named(local_store: LocalDatasetStore, valid_frame: pd.DataFrame, write_csv: WriteCsv) -> None:
    valid_frame.insert(0, "customer_id", [str(i) for i in range(len(valid_frame))])
    assert_refused(local_store, write_csv(valid_frame), "unexpected column(s): customer_id", "remove or rename")


def test_text_in_integer_column(local_store: LocalDatasetStore, valid_frame: pd.DataFrame, write_csv: WriteCsv) -> None:
    valid_frame.loc[3, "age"] = "forty"
    error = assert_refused(local_store, write_csv(valid_frame), "column 'age' must be an integer", "'forty'", "line(s) 5")
    assert len(error.details) == 1, error.details


def test_text_in_float_column(local_store: LocalDatasetStore, valid_frame: pd.DataFrame, write_csv: WriteCsv) -> None:
    valid_frame.loc[[0, 7], "euribor3m"] = "n/a"
    assert_refused(local_store, write_csv(valid_frame), "column 'euribor3m' must be a number", "2 value(s)", "'n/a'",
                   "line(s) 2, 9")


def test_infinity_is_not_a_number(local_store: LocalDatasetStore, valid_frame: pd.DataFrame, write_csv: WriteCsv) -> None:
    valid_frame.loc[3, "euribor3m"] = "inf"
    valid_frame.loc[8, "age"] = "-inf"
    assert_refused(local_store, write_csv(valid_frame), "column 'euribor3m' must be a number", "'inf'", "line(s) 5",
                   "column 'age' must be an integer", "'-inf'", "line(s) 10")


def test_fraction_in_integer_column(local_store: LocalDatasetStore, valid_frame: pd.DataFrame, write_csv: WriteCsv) -> None:
    valid_frame.loc[10, "campaign"] = "2.5"
    assert_refused(local_store, write_csv(valid_frame), "column 'campaign' must hold whole numbers", "line(s) 12", "fractions")


def test_whole_number_written_with_decimal_point_is_accepted(valid_frame: pd.DataFrame) -> None:
    valid_frame.loc[10, "campaign"] = "2.0"
    frame = validate_csv(samples.csv_bytes(valid_frame)).frame
    assert frame.loc[10, "campaign"] == 2
    assert frame["campaign"].dtype == np.int64


def test_empty_file_of_zero_bytes(local_store: LocalDatasetStore, write_csv: WriteCsv) -> None:
    assert_refused(local_store, write_csv(b""), "the file is empty")


def test_whitespace_only_file(local_store: LocalDatasetStore, write_csv: WriteCsv) -> None:
    assert_refused(local_store, write_csv("\n  \n"), "the file is empty")


def test_header_only_file(local_store: LocalDatasetStore, write_csv: WriteCsv) -> None:
    assert_refused(local_store, write_csv(",".join(schema.COLUMNS) + "\n"), "header but no rows")


def test_target_other_than_yes_no(local_store: LocalDatasetStore, valid_frame: pd.DataFrame, write_csv: WriteCsv) -> None:
    valid_frame.loc[4, "y"] = "maybe"
    valid_frame.loc[6, "y"] = "1"
    assert_refused(local_store, write_csv(valid_frame), "column 'y' must be 'yes' or 'no'", "2 value(s)", "'maybe'", "'1'",
                   "line(s) 6, 8")


def test_target_in_other_case_is_accepted(valid_frame: pd.DataFrame) -> None:
    valid_frame["y"] = valid_frame["y"].str.upper()
    frame = validate_csv(samples.csv_bytes(valid_frame)).frame
    assert set(frame["y"]) == {"yes", "no"}


def test_single_class(local_store: LocalDatasetStore, valid_frame: pd.DataFrame, write_csv: WriteCsv) -> None:
    valid_frame["y"] = "no"
    assert_refused(local_store, write_csv(valid_frame), "column 'y' holds a single class (no)", "both 'yes' and 'no'")


def test_too_few_of_one_class(local_store: LocalDatasetStore, valid_frame: pd.DataFrame, write_csv: WriteCsv) -> None:
    valid_frame["y"] = "no"
    valid_frame.loc[:2, "y"] = "yes"
    assert_refused(local_store, write_csv(valid_frame), "column 'y' has only 3 'yes' row(s)", "at least 10")


def test_too_few_rows(local_store: LocalDatasetStore, write_csv: WriteCsv) -> None:
    frame = samples.stratified_sample(60, seed=3)
    assert_refused(local_store, write_csv(frame), "too few rows: 60", "at least 100")


def test_empty_categorical_value(local_store: LocalDatasetStore, valid_frame: pd.DataFrame, write_csv: WriteCsv) -> None:
    valid_frame.loc[2, "job"] = ""
    assert_refused(local_store, write_csv(valid_frame), "column 'job': 1 empty value(s)", "line(s) 4", "fill them in")


def test_empty_numeric_value(local_store: LocalDatasetStore, valid_frame: pd.DataFrame, write_csv: WriteCsv) -> None:
    valid_frame.loc[[1, 2, 3], "pdays"] = " "
    error = assert_refused(local_store, write_csv(valid_frame), "column 'pdays': 3 empty value(s)", "line(s) 3, 4, 5")
    assert not any("must be" in d for d in error.details), "an empty value is not also reported as a wrong type"


def test_empty_target_value(local_store: LocalDatasetStore, valid_frame: pd.DataFrame, write_csv: WriteCsv) -> None:
    valid_frame.loc[0, "y"] = ""
    assert_refused(local_store, write_csv(valid_frame), "column 'y'", "line(s) 2")


def test_not_utf8(local_store: LocalDatasetStore, valid_frame: pd.DataFrame, write_csv: WriteCsv) -> None:
    valid_frame.loc[0, "job"] = "técnico"
    assert_refused(local_store, write_csv(samples.csv_bytes(valid_frame).decode().encode("latin-1")), "not UTF-8")


def test_every_problem_is_listed_at_once(local_store: LocalDatasetStore, valid_frame: pd.DataFrame, write_csv: WriteCsv) -> None:
    valid_frame.loc[0, "age"] = "old"
    valid_frame.loc[1, "job"] = ""
    valid_frame.loc[2, "y"] = "perhaps"
    error = assert_refused(local_store, write_csv(valid_frame), "column 'age'", "column 'job'", "column 'y'")
    assert len(error.details) == 3, error.details


def test_many_bad_lines_are_summarised(local_store: LocalDatasetStore, valid_frame: pd.DataFrame, write_csv: WriteCsv) -> None:
    valid_frame.loc[:19, "duration"] = "long"
    assert_refused(local_store, write_csv(valid_frame), "20 value(s)", "line(s) 2, 3, 4, 5, 6 and 15 more")


def test_refusal_keeps_earlier_versions(local_store: LocalDatasetStore, valid_frame: pd.DataFrame, write_csv: WriteCsv) -> None:
    first = register_dataset(local_store, write_csv(valid_frame, "good.csv"), name="bankmarketing").dataset
    bad = valid_frame.drop(columns=["month"])
    with pytest.raises(InvalidDataset, match="month"):
        register_dataset(local_store, write_csv(bad, "bad.csv"), name="bankmarketing")
    assert local_store.list() == [first]
    assert sorted(p.name for p in local_store.root.rglob("*") if p.is_file()) == sorted(
        [f"{first.content_hash}.csv", f"{first.content_hash}.holdout.json"]
    )


# --- good files -------------------------------------------------------------------------------------------


def test_valid_file_is_typed_and_warns_about_duration(valid_frame: pd.DataFrame) -> None:
    validated = validate_csv(samples.csv_bytes(valid_frame))
    frame = validated.frame
    assert list(frame.columns) == list(schema.COLUMNS)
    for name in schema.INTEGER_FEATURES:
        assert frame[name].dtype == np.int64, name
    for name in schema.FLOAT_FEATURES:
        assert frame[name].dtype == np.float64, name
    assert validated.rows == 300
    assert validated.positive_share == pytest.approx((valid_frame["y"] == "yes").mean())
    assert any("duration" in w and "--exclude-columns duration" in w for w in validated.warnings)


def test_same_content_twice_is_the_same_version(store, valid_frame: pd.DataFrame, write_csv: WriteCsv) -> None:
    first = register_dataset(store, write_csv(valid_frame, "a.csv"), name="bankmarketing")
    again = register_dataset(store, write_csv(valid_frame, "copy-of-a.csv"), name="bankmarketing")
    assert first.created is True
    assert again.created is False
    assert again.dataset == first.dataset
    assert first.dataset.version == 1
    assert first.dataset.content_hash == content_hash(samples.csv_bytes(valid_frame))
    assert store.list() == [first.dataset]


def test_different_content_is_the_next_version(store, valid_frame: pd.DataFrame) -> None:
    first = register_dataset(store, samples.csv_bytes(valid_frame), name="bankmarketing")
    second = register_dataset(store, samples.csv_bytes(valid_frame.iloc[:-1]), name="bankmarketing")
    assert (second.created, second.dataset.version, second.dataset.rows) == (True, 2, 299)
    assert second.dataset.content_hash != first.dataset.content_hash
    assert [v.version for v in store.list("bankmarketing")] == [1, 2]
    assert store.get("bankmarketing") == second.dataset
    assert store.get("bankmarketing", 1) == first.dataset
    # registering version 1's content again still answers version 1
    assert register_dataset(store, samples.csv_bytes(valid_frame), name="bankmarketing").dataset == first.dataset


def test_versions_are_counted_per_dataset_name(store, valid_frame: pd.DataFrame) -> None:
    register_dataset(store, samples.csv_bytes(valid_frame), name="bankmarketing")
    other = register_dataset(store, samples.csv_bytes(valid_frame), name="campaign-2025")
    assert (other.created, other.dataset.version) == (True, 1)
    assert [d.ref for d in store.list()] == ["bankmarketing:1", "campaign-2025:1"]


def test_stored_content_round_trips(store, valid_frame: pd.DataFrame) -> None:
    content = samples.csv_bytes(valid_frame)
    dataset = register_dataset(store, content, name="bankmarketing").dataset
    assert store.read(dataset) == content
    frame = load_frame(store, dataset)
    assert len(frame) == 300
    assert (frame["y"] == "yes").mean() == pytest.approx(dataset.positive_share)


def test_holdout_is_stratified() -> None:
    target = samples.stratified_sample(2000, seed=5)["y"]
    held = holdout_indices(target, 0.1, seed=42)
    assert len(held) == 200
    assert len(set(held.tolist())) == 200
    assert held.min() >= 0 and held.max() < 2000
    assert list(held) == sorted(held)
    overall_yes = int((target == "yes").sum())
    held_yes = int((target.iloc[held] == "yes").sum())
    assert abs(held_yes - overall_yes * 0.1) <= 1, (held_yes, overall_yes)


def test_holdout_is_stable_across_calls_and_stores(valid_frame: pd.DataFrame, tmp_path: Path) -> None:
    target = valid_frame["y"]
    assert np.array_equal(holdout_indices(target, 0.1, seed=42), holdout_indices(target.copy(), 0.1, seed=42))
    assert not np.array_equal(holdout_indices(target, 0.1, seed=42), holdout_indices(target, 0.1, seed=7))
    content = samples.csv_bytes(valid_frame)
    a, b = InMemoryDatasetStore(), LocalDatasetStore(tmp_path / "ds", tmp_path / "catalog.db")
    held_a = a.holdout(register_dataset(a, content, name="bankmarketing").dataset)
    held_b = b.holdout(register_dataset(b, content, name="bankmarketing").dataset)
    assert np.array_equal(held_a, held_b)
    assert np.array_equal(held_a, holdout_indices(target, 0.1, seed=42))
    # the version keeps its holdout: reopening the store gives the same rows
    reopened = LocalDatasetStore(tmp_path / "ds", tmp_path / "catalog.db")
    assert np.array_equal(reopened.holdout(reopened.get("bankmarketing", 1)), held_a)


def test_a_repeated_column_is_named_as_duplicated(valid_frame: pd.DataFrame) -> None:
    from shared.data_validation import validate_csv
    from shared.errors import InvalidDataset

    text = samples.csv_bytes(valid_frame).decode().splitlines()
    doubled = "\n".join(f"{line},{line.split(',')[0]}" for line in text).encode()
    with pytest.raises(InvalidDataset) as caught:
        validate_csv(doubled)
    assert "duplicated column(s): age" in str(caught.value)
