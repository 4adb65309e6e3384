"""A hostile or careless data file costs seconds and gets a short reason: issue 15, items 1-3 and 7.

Each file here once hung validation for hours, crashed it, or came back copied into the reason.
The timeout marks are guards against that hang coming back, not speed goals (those are in bench/).
"""

from __future__ import annotations

import pandas as pd
import pytest

from shared import schema
from shared.data_validation import ReadLimits, column_problems, validate_csv
from shared.errors import InvalidDataset
from tests import samples

REASON_BOUND = 4096


def refused(content: bytes, *, limits: ReadLimits | None = None) -> str:
    with pytest.raises(InvalidDataset) as caught:
        validate_csv(content, min_rows=1, min_rows_per_class=0, **({"limits": limits} if limits else {}))
    text = str(caught.value)
    assert len(text) < REASON_BOUND, f"the reason is {len(text)} characters long"
    return text


def _rows(frame: pd.DataFrame, n: int = 20) -> list[bytes]:
    return samples.csv_bytes(frame.head(n)).splitlines()


@pytest.mark.timeout(60)
def test_a_file_of_a_million_columns_is_refused_at_its_header(valid_frame: pd.DataFrame) -> None:
    header = ",".join(f"c{i}" for i in range(1_000_000)).encode()
    text = refused(header + b"\n" + b",".join([b"1"] * 1_000_000) + b"\n")
    assert "the header line is" in text and "bytes long" in text


@pytest.mark.timeout(60)
def test_a_header_of_thousands_of_short_names_is_refused_by_its_width() -> None:
    header = ",".join([*schema.COLUMNS, *(f"x{i}" for i in range(6000))]).encode()
    assert "the header has 6,021 columns" in refused(header + b"\n")


def test_the_repeated_column_check_is_linear_and_bounded() -> None:
    names = [*schema.COLUMNS, *(f"x{i}" for i in range(20_000)), *(f"x{i}" for i in range(20_000))]
    problems = column_problems(names, schema.COLUMNS)
    assert problems[-1].startswith("duplicated column(s): x0, x1, ") and problems[-1].endswith(" and 19995 more")
    assert sum(len(p) for p in problems) < 1000


def test_a_header_field_over_the_csv_modules_field_limit_is_a_reason_not_a_crash(valid_frame: pd.DataFrame) -> None:
    rows = _rows(valid_frame)
    text = refused(b"a" * 200_000 + b"," + rows[0] + b"\n" + b"\n".join(rows[1:]))
    assert "the header line is 200,1" in text


def test_a_huge_cell_is_named_but_never_copied_into_the_reason(valid_frame: pd.DataFrame) -> None:
    rows = _rows(valid_frame)
    fields = rows[1].split(b",")
    one_line = b"\n".join([rows[0], b",".join([fields[0], b"x" * 2_000_000, *fields[2:]]), *rows[2:]])
    assert "line 2 is 2,000,1" in refused(one_line)
    quoted = b'"' + b"x\n" * 100_000 + b'"'  # many short lines inside one quoted value
    text = refused(b"\n".join([rows[0], b",".join([fields[0], quoted, *fields[2:]]), *rows[2:]]))
    assert "column 'job' holds a value of 200,000 characters on line 2" in text


def test_an_offending_value_is_shown_clipped_and_escaped(valid_frame: pd.DataFrame) -> None:
    rows = _rows(valid_frame)
    fields = rows[1].split(b",")
    value = b'"' + b"12\n" * 300 + b'"'  # 900 characters: under the cell cap, far over what a reason shows
    text = refused(b"\n".join([rows[0], b",".join([value, *fields[1:]]), *rows[2:]]))
    assert "column 'age' must be an integer" in text
    assert "12\\n12\\n" in text and "more characters" in text and "12\n12" not in text


def test_a_file_over_the_byte_cap_is_refused_unread(valid_frame: pd.DataFrame) -> None:
    text = refused(samples.csv_bytes(valid_frame), limits=ReadLimits(max_bytes=10_000))
    assert "over the 10,000 bytes" in text and "BANKOPS_MAX_DATA_MB" in text and "split it" in text


def test_binary_data_is_refused(valid_frame: pd.DataFrame) -> None:
    assert "binary data" in refused(bytes(range(256)) * 64)
    assert "binary data" in refused(samples.csv_bytes(valid_frame.head(5)) + b"\x00\x01")


@pytest.mark.parametrize("value", ["99999999999999999999", "1e19", "9223372036854775808", "-9223372036854775809"])
def test_an_integer_outside_int64_is_refused_not_wrapped(valid_frame: pd.DataFrame, value: str) -> None:
    frame = valid_frame.head(30).astype(str)
    frame.loc[frame.index[3], "age"] = value
    text = refused(samples.csv_bytes(frame))
    assert "column 'age' must hold integers from -9,223,372,036,854,775,808 to 9,223,372,036,854,775,807" in text
    assert "line(s) 5" in text


def test_the_largest_int64_still_passes(valid_frame: pd.DataFrame) -> None:
    frame = valid_frame.head(30).astype(str)
    frame.loc[frame.index[3], "pdays"] = str(2**62)
    typed = validate_csv(samples.csv_bytes(frame), min_rows=1, min_rows_per_class=0).frame
    assert typed["pdays"].dtype == "int64" and typed["pdays"].iloc[3] == 2**62
