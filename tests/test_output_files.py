"""Output folders are split into files of at most ROWS_PER_FILE rows (100,000 in a real run; 2
here), named `<split>-NNNNN-of-NNNNN.parquet`, and the files together hold exactly the rows of an
unsplit run, in the same order."""

from __future__ import annotations

import pyarrow.parquet as pq

from run_helpers import run_scripted, write_constitution, write_prompts
from selfalign.store import assemble as writers

PROMPTS = ([{"id": f"t{i}", "prompt": f"Train question {i}?"} for i in range(5)]
           + [{"id": "x0", "prompt": "Test question?", "split": "test"}])


def rows_of(files) -> list[dict]:
    return [row for f in files for row in pq.read_table(f).to_pylist()]


def test_outputs_are_split_at_rows_per_file(tmp_path, monkeypatch):
    manifest = write_constitution(tmp_path / "c")
    prompts = write_prompts(tmp_path / "p.jsonl", PROMPTS)
    run_scripted(manifest, prompts, tmp_path / "whole")
    monkeypatch.setattr(writers, "ROWS_PER_FILE", 2)
    run_scripted(manifest, prompts, tmp_path / "split")

    for kind in ("prefs", "sft"):
        names = sorted(p.name for p in (tmp_path / "split" / kind).iterdir())
        assert names == ["test-00000-of-00001.parquet", "train-00000-of-00003.parquet",
                         "train-00001-of-00003.parquet", "train-00002-of-00003.parquet"]
        train = sorted((tmp_path / "split" / kind).glob("train-*.parquet"))
        assert [pq.read_metadata(f).num_rows for f in train] == [2, 2, 1]
        split_rows = rows_of(train)
        whole_rows = rows_of([tmp_path / "whole" / kind / "train-00000-of-00001.parquet"])
        assert len(split_rows) == len(whole_rows) == 5
        assert split_rows == whole_rows
        assert [r["prompt_id"] for r in split_rows] == ["t0", "t1", "t2", "t3", "t4"]

    traces = sorted((tmp_path / "split" / "traces").glob("*.parquet"))
    assert [pq.read_metadata(f).num_rows for f in traces] == [2, 2, 2]
    assert [r["prompt_id"] for r in rows_of(traces)] == ["t0", "t1", "t2", "t3", "t4", "x0"]


def test_datasets_reads_every_file_of_a_split_folder(tmp_path, monkeypatch):
    from datasets import load_dataset

    monkeypatch.setattr(writers, "ROWS_PER_FILE", 2)
    run_scripted(write_constitution(tmp_path / "c"), write_prompts(tmp_path / "p.jsonl", PROMPTS),
                 tmp_path / "out")
    files = {split: sorted(str(p) for p in (tmp_path / "out" / "prefs").glob(f"{split}-*"))
             for split in ("train", "test")}
    data = load_dataset("parquet", data_files=files)
    assert (data["train"].num_rows, data["test"].num_rows) == (5, 1)
    assert data["train"]["prompt_id"] == ["t0", "t1", "t2", "t3", "t4"]
