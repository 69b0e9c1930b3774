"""Every parquet writer uses one set of options (selfalign.atomic.PARQUET_OPTIONS): zstd, with
column statistics, read back here from each file's own metadata."""

import json

import numpy as np
import pyarrow.parquet as pq

from selfalign.atomic import PARQUET_OPTIONS, write_parquet
from selfalign.prompts.prepare import PrepareSettings, prepare
from selfalign.store.columns import SFT_SCHEMA
from selfalign.store.shard_files import write_shard_files
from selfalign.train.rl.outputs import RunRecorder

from run_helpers import run_scripted, write_constitution, write_prompts


def options_of(path) -> set:
    """(compression, statistics written) of every column chunk of every row group."""
    meta = pq.read_metadata(path)
    return {(meta.row_group(g).column(c).compression, meta.row_group(g).column(c).is_stats_set)
            for g in range(meta.num_row_groups) for c in range(meta.num_columns)}


EXPECTED = {("ZSTD", True)}


def rows(path) -> int:
    """A file of no rows has no row groups, so no column chunk to read the options of."""
    return pq.read_metadata(path).num_rows


def test_the_options_are_zstd_with_statistics():
    assert PARQUET_OPTIONS == {"compression": "zstd", "write_statistics": True}


def test_shard_files_carry_the_options(tmp_path):
    rows = {"traces": [], "prefs": [], "rejects": [],
            "sft": [{"messages": [{"role": "user", "content": "hi"},
                                  {"role": "assistant", "content": "hello"}],
                     "prompt_id": "q1", "split": "train"}]}
    files = write_shard_files(tmp_path, 0, rows, "a1b2c3d4")
    assert options_of(tmp_path / files["sft"]["name"]) == EXPECTED
    sft = pq.read_metadata(tmp_path / files["sft"]["name"])
    stats = sft.row_group(0).column(sft.schema.names.index("prompt_id")).statistics
    assert (stats.min, stats.max) == ("q1", "q1")


def test_a_runs_final_files_carry_the_options(tmp_path):
    prompts = [{"id": f"q{i}", "prompt": f"Question {i}?"} for i in range(3)]
    out = tmp_path / "run"
    run_scripted(write_constitution(tmp_path / "c"), write_prompts(tmp_path / "p.jsonl", prompts), out)
    finals = [f for f in [*out.glob("*/*.parquet"), out / "rejects.parquet"] if rows(f)]
    assert len(finals) == 3 and all(options_of(f) == EXPECTED for f in finals)


def test_prepared_prompts_carry_the_options(tmp_path):
    source = write_prompts(tmp_path / "in.jsonl", [{"id": "a", "prompt": "Hello there?"}])
    prepare([str(source)], tmp_path / "prepared", PrepareSettings())
    files = [f for f in (tmp_path / "prepared").glob("*.parquet") if rows(f)]
    assert [f.name for f in files] == ["train.parquet"] and all(options_of(f) == EXPECTED for f in files)


def test_atomic_writes_and_rl_samples_carry_the_options(tmp_path):
    write_parquet(tmp_path / "x.parquet", [{"messages": [], "prompt_id": "p", "split": "test"}],
                  SFT_SCHEMA)
    assert options_of(tmp_path / "x.parquet") == EXPECTED
    recorder = RunRecorder(tmp_path / "rl", sample_every=1)
    recorder.samples(1, [{"prompt": "p", "prompt_id": "1"}], ["done"], np.array([[0.5]]),
                     ["rm"], [0.1])
    assert options_of(tmp_path / "rl" / "samples" / "step-000001.parquet") == EXPECTED
    assert json.loads((tmp_path / "rl" / "metrics.jsonl").read_text() or "null") is None
