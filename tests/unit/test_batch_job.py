"""The batch step as a function of (model, input stream, output stream), and its file form."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shared.batch.job import BatchOptions, rejects_path, score_file, score_stream
from shared.batch.scorer import BatchModel
from shared.errors import InvalidDataset
from tests import samples
from tests.batch_samples import clients, expected_proba, tiny_model


@pytest.fixture(scope="module")
def model() -> BatchModel:
    return BatchModel.build(tiny_model(), "7")


def _read(data: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)


def _score(model: BatchModel, text: bytes, **options: object) -> tuple[pd.DataFrame, pd.DataFrame | None, object]:
    out, bad = io.BytesIO(), io.BytesIO()
    summary = score_stream(model, io.BytesIO(text), out, bad, BatchOptions(**options))  # type: ignore[arg-type]
    return _read(out.getvalue()), (_read(bad.getvalue()) if bad.getvalue() else None), summary


class TestScoring:
    def test_every_input_column_passes_through_with_the_scores_in_input_order(self, model: BatchModel) -> None:
        frame = clients(3000, seed=1)
        out, rejects, summary = _score(model, samples.csv_bytes(frame), chunk_bytes=50_000)  # many chunks
        assert rejects is None
        assert list(out.columns) == [*frame.columns, "prediction", "probability_yes", "model_version"]
        pd.testing.assert_frame_equal(out[frame.columns], frame)
        p = out["probability_yes"].astype(float).to_numpy()
        np.testing.assert_allclose(p, expected_proba(model.model, frame), rtol=0, atol=1e-9)
        assert (out["prediction"] == np.where(p >= 0.5, "yes", "no")).all()
        assert set(out["model_version"]) == {"7"}
        assert (summary.rows_read, summary.rows_scored, summary.rows_rejected, summary.rows_written) == (3000, 3000, 0, 3000)

    def test_chunk_size_does_not_change_the_output(self, model: BatchModel) -> None:
        text = samples.csv_bytes(clients(2000, seed=2))
        outputs = []
        for chunk_bytes in (10_000, 77_777, 16 << 20):
            out = io.BytesIO()
            score_stream(model, io.BytesIO(text), out, None, BatchOptions(chunk_bytes=chunk_bytes))
            outputs.append(_read(out.getvalue()))
        for other in outputs[1:]:  # equal up to the last bits of the sums (batch sizes change the BLAS blocking)
            pd.testing.assert_frame_equal(other.drop(columns="probability_yes"), outputs[0].drop(columns="probability_yes"))
            np.testing.assert_allclose(other["probability_yes"].astype(float), outputs[0]["probability_yes"].astype(float),
                                       rtol=1e-12)

    def test_values_with_commas_and_quotes_and_windows_line_ends_pass_through(self, model: BatchModel) -> None:
        frame = clients(5, seed=3)
        frame["client_id"] = ['Smith, "Jo"', "b", "c", "d", "e"]
        text = frame.to_csv(index=False, lineterminator="\r\n").encode()
        out, rejects, _ = _score(model, text)
        assert rejects is None
        assert out["client_id"].tolist() == frame["client_id"].tolist()

    def test_the_input_hash_is_the_file_sha256(self, model: BatchModel) -> None:
        import hashlib

        text = samples.csv_bytes(clients(100))
        _, _, summary = _score(model, text, chunk_bytes=3000)
        assert summary.input_sha256 == hashlib.sha256(text).hexdigest()
        assert summary.input_bytes == len(text)


class TestRejects:
    def test_bad_rows_go_to_rejects_with_their_line_and_reason_and_the_rest_is_scored(self, model: BatchModel) -> None:
        frame = clients(40, seed=4)
        good_lines = samples.csv_bytes(frame).decode().splitlines()
        header, rows = good_lines[0], good_lines[1:]
        broken = dict(enumerate(rows))
        broken[4] = rows[4].replace(f",{frame.loc[4, 'age']},", ",abc,", 1)  # age follows client_id
        broken[9] = ",".join(rows[9].split(",")[:-1])  # a field short
        broken[20] = rows[20].split(",", 1)[0] + "," + ",".join(rows[20].split(",")[1:-1]) + ","  # nr.employed empty
        text = "\n".join([header, *[broken[i] for i in range(40)]]).encode() + b"\n"
        text = text.replace(rows[30].encode(), rows[30].encode() + b"\n", 1)  # a blank line after data row 30
        out, rejects, summary = _score(model, text, chunk_bytes=700)
        assert rejects is not None
        # data row i is on line i + 2; the blank line moves rows after row 30 one line down
        assert rejects["line"].tolist() == ["6", "11", "22"]
        reasons = rejects["reason"].tolist()
        assert "column 'age' must be an integer, not 'abc'" in reasons[0]
        assert "the line has 20 field(s); the header has 21" in reasons[1]
        assert "column 'nr.employed' is empty" in reasons[2]
        assert rejects["client_id"].tolist() == ["c000004", "c000009", "c000020"]
        kept = frame.drop(index=[4, 9, 20])
        assert out["client_id"].tolist() == kept["client_id"].tolist()
        np.testing.assert_allclose(out["probability_yes"].astype(float), expected_proba(model.model, kept), atol=1e-9)
        assert (summary.rows_read, summary.rows_scored, summary.rows_rejected) == (40, 37, 3)

    def test_numbers_are_checked_as_training_data_is(self, model: BatchModel) -> None:
        frame = clients(6, seed=5)
        frame.loc[0, "duration"] = "12.5"
        frame.loc[1, "euribor3m"] = "inf"
        frame.loc[2, "job"] = "  "
        frame.loc[3, "campaign"] = " 3 "  # spaces around a number are fine
        frame.loc[4, "job"] = "astronaut"  # an unseen category is scored
        out, rejects, _ = _score(model, samples.csv_bytes(frame))
        assert rejects is not None
        assert rejects["line"].tolist() == ["2", "3", "4"]
        assert "must hold a whole number, not '12.5'" in rejects["reason"][0]
        assert "column 'euribor3m' must be a number, not 'inf'" in rejects["reason"][1]
        assert "column 'job' is empty" in rejects["reason"][2]
        assert out["client_id"].tolist() == frame["client_id"][3:].tolist()

    def test_a_line_that_is_not_utf8_is_rejected_alone(self, model: BatchModel) -> None:
        text = samples.csv_bytes(clients(5, seed=6))
        lines = text.split(b"\n")
        lines[2] = lines[2].replace(b"c000001", b"c\xff01")
        out, rejects, _ = _score(model, b"\n".join(lines))
        assert rejects is not None and rejects["line"].tolist() == ["3"]
        assert "not UTF-8" in rejects["reason"][0]
        assert len(out) == 4


class TestFiles:
    def test_a_file_with_wrong_columns_fails_at_once_and_leaves_no_output(self, model: BatchModel, tmp_path: Path) -> None:
        source = tmp_path / "clients.csv"
        source.write_bytes(samples.csv_bytes(clients(50).drop(columns=["age", "euribor3m"])))
        with pytest.raises(InvalidDataset) as raised:
            score_file(model, source, tmp_path / "out.csv")
        assert "missing column(s): age, euribor3m" in str(raised.value)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["clients.csv"]

    def test_a_failure_midway_leaves_no_partial_output_and_keeps_an_earlier_one(self, model: BatchModel, tmp_path: Path) -> None:
        class FailsOnSecondChunk(BatchModel):
            def proba(self, x: np.ndarray) -> np.ndarray:
                calls.append(len(x))
                if len(calls) == 2:
                    raise RuntimeError("the model broke")
                return super().proba(x)

        calls: list[int] = []
        failing = FailsOnSecondChunk(model.version, model.model, model.compiled)
        source, output = tmp_path / "clients.csv", tmp_path / "out.csv"
        output.write_text("earlier result\n")
        source.write_bytes(samples.csv_bytes(clients(500)))
        with pytest.raises(RuntimeError, match="the model broke"):
            score_file(failing, source, output, BatchOptions(chunk_bytes=5000))
        assert output.read_text() == "earlier result\n"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["clients.csv", "out.csv"]

    def test_a_value_with_a_line_break_rejects_both_halves(self, model: BatchModel) -> None:
        text = samples.csv_bytes(clients(5)) + b'c9,"line\nbreak",x\n'
        out, rejects, _ = _score(model, text)
        assert rejects is not None and rejects["line"].tolist() == ["7", "8"]
        assert len(out) == 5

    def test_rejects_file_only_when_there_are_rejects(self, model: BatchModel, tmp_path: Path) -> None:
        source, output = tmp_path / "clients.csv", tmp_path / "out.csv"
        frame = clients(20)
        source.write_bytes(samples.csv_bytes(frame))
        score_file(model, source, output)
        assert not rejects_path(output).exists()
        frame.loc[3, "age"] = "x"
        source.write_bytes(samples.csv_bytes(frame))
        summary = score_file(model, source, output)
        assert rejects_path(output).name == "out.rejects.csv"
        assert _read(rejects_path(output).read_bytes())["line"].tolist() == ["5"]
        assert summary.rows_written == 19


class TestSelection:
    def test_top_k_writes_the_k_most_likely_sorted(self, model: BatchModel) -> None:
        text = samples.csv_bytes(clients(3000, seed=8))
        full, _, _ = _score(model, text)
        top, _, summary = _score(model, text, top=25, chunk_bytes=40_000)
        p = full["probability_yes"].astype(float)
        expected = full.loc[np.lexsort((np.arange(len(p)), -p.to_numpy()))[:25]]
        assert top["client_id"].tolist() == expected["client_id"].tolist()
        assert top["probability_yes"].astype(float).is_monotonic_decreasing
        assert summary.rows_written == 25 and summary.rows_scored == 3000

    def test_threshold_keeps_the_clients_at_or_above_the_cut_off_in_input_order(self, model: BatchModel) -> None:
        text = samples.csv_bytes(clients(2000, seed=9))
        full, _, _ = _score(model, text)
        cut, _, summary = _score(model, text, threshold=0.3, chunk_bytes=30_000)
        expected = full[full["probability_yes"].astype(float) >= 0.3]
        assert cut["client_id"].tolist() == expected["client_id"].tolist()
        assert summary.rows_written == len(expected) > 0

    def test_top_and_threshold_together(self, model: BatchModel) -> None:
        text = samples.csv_bytes(clients(2000, seed=10))
        out, _, _ = _score(model, text, top=1000, threshold=0.5)
        assert (out["probability_yes"].astype(float) >= 0.5).all()
        assert len(out) < 1000

    def test_options_are_checked(self) -> None:
        from shared.errors import InvalidInput

        with pytest.raises(InvalidInput):
            BatchOptions(top=0)
        with pytest.raises(InvalidInput):
            BatchOptions(threshold=1.5)
