"""A folder loaded through its card gives the rows its files hold now, with `datasets`' own cache
shared between loads: after the folder is written again in place, and for another folder of the
same name. `datasets` 5.2 keys a local folder's cache on the folder's name, the config and a
hash of the card's YAML only (docs/reference/outputs.md), so a card that did not change with its
files handed back the rows cached for other files.

Each test keeps one cache folder for all its loads, as a user's ~/.cache is: set in this process
(`datasets.config`) and, for the loads in fresh processes, through HF_DATASETS_CACHE."""

import json
import shutil
import subprocess
import sys

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from selfalign.eval.report import write_eval_card
from selfalign.label.export import export_labels
from selfalign.label.project import open_project

from label_helpers import put_answers, synthetic_run, write_tasks
from run_helpers import run_scripted, write_constitution, write_prompts

# Both runs of a test hold train, validation and test, so their cards' `configs` are the same:
# only what the card says of the files tells them apart.
SEVEN = ["train", "validation", "test", "train", "validation", "test", "train"]  # 3/2/2
FOUR = ["train", "validation", "test", "train"]  # 2/1/1

LOAD = """
import json, sys
import datasets
found = datasets.load_dataset(sys.argv[1], sys.argv[2])
print(json.dumps({split: sorted(found[split][sys.argv[3]]) for split in found}))
"""


@pytest.fixture
def shared_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hf-datasets-cache"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    return cache


def in_this_process(folder, config, key):
    found = datasets.load_dataset(str(folder), config)
    return {split: sorted(found[split][key]) for split in found}


def in_a_new_process(folder, config, key):
    done = subprocess.run([sys.executable, "-c", LOAD, str(folder), config, key],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


LOADERS = pytest.mark.parametrize("load", [in_this_process, in_a_new_process],
                                  ids=["one-process", "two-processes"])


def in_files(folder, key):
    """{split: sorted keys} read from the parquet files themselves, split from each file name."""
    found = {}
    for path in sorted(folder.glob("*.parquet")):
        split = path.name.split("-")[0]
        found.setdefault(split, []).extend(pq.read_table(path, columns=[key])[key].to_pylist())
    return {split: sorted(keys) for split, keys in found.items()}


def make_run(root, splits, tag):
    rows = [{"id": f"{tag}{i}", "prompt": f"Question {tag}{i}?", "split": split}
            for i, split in enumerate(splits)]
    manifest = write_constitution(root / "constitution")
    run_scripted(manifest, write_prompts(root / "prompts.jsonl", rows), root / "run")
    return root / "run"


@LOADERS
def test_a_run_made_again_in_place_loads_its_new_rows(tmp_path, shared_cache, load):
    run = make_run(tmp_path, SEVEN, "q")
    assert load(run, "prefs", "prompt_id") == in_files(run / "prefs", "prompt_id")
    shutil.rmtree(run)
    make_run(tmp_path, FOUR, "q")  # what `make demo` does: the same folder, fewer rows
    expected = in_files(run / "prefs", "prompt_id")
    assert {split: len(ids) for split, ids in expected.items()} == {
        "train": 2, "validation": 1, "test": 1}
    assert load(run, "prefs", "prompt_id") == expected
    assert load(run, "sft", "prompt_id") == in_files(run / "sft", "prompt_id")


@LOADERS
def test_two_runs_of_the_same_folder_name_each_load_their_own_rows(tmp_path, shared_cache, load):
    first = make_run(tmp_path / "a", SEVEN, "q")
    second = make_run(tmp_path / "b", FOUR, "r")
    assert first.name == second.name
    assert load(first, "prefs", "prompt_id") == in_files(first / "prefs", "prompt_id")
    assert load(second, "prefs", "prompt_id") == in_files(second / "prefs", "prompt_id") == {
        "train": ["r0", "r3"], "validation": ["r1"], "test": ["r2"]}
    assert load(first, "traces", "prompt_id") == in_files(first / "traces", "prompt_id")
    assert load(second, "traces", "prompt_id") == in_files(second / "traces", "prompt_id")


def export(root, answers):
    run = synthetic_run(root / "run", 4, splits=("train", "test"))
    write_tasks(run, "    overlap: 1.0\n")
    project = open_project(run, log=lambda m: None)
    put_answers(project, {"pat": answers})
    export_labels(project, root / "human")
    return root / "human"


def test_label_exports_of_one_folder_name_load_their_own_rows(tmp_path, shared_cache):
    four = export(tmp_path / "a", {"p0": 0, "p1": 1, "p2": "tie", "p3": 0})
    three = export(tmp_path / "b", {"p0": 0, "p1": 1, "p3": 0})
    assert in_this_process(four, "prefs", "id") == in_files(four / "prefs", "id")
    assert in_this_process(three, "prefs", "id") == in_files(three / "prefs", "id")
    assert {split: len(ids) for split, ids in in_files(three / "prefs", "id").items()} == {
        "train": 1, "test": 2}


def answers_folder(out, ids):
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"prompt_id": ids}), out / "answers.parquet")
    write_eval_card(out, "answers", len(ids), "one row per prompt")
    return out


@LOADERS
def test_an_eval_folder_written_again_loads_its_new_rows(tmp_path, shared_cache, load):
    out = answers_folder(tmp_path / "eval", ["e0", "e1", "e2"])
    assert load(out, "answers", "prompt_id") == {"test": ["e0", "e1", "e2"]}
    answers_folder(out, ["f0", "f1"])
    assert load(out, "answers", "prompt_id") == {"test": ["f0", "f1"]}
    answers_folder(out, ["h0", "h1"])  # as many rows, of the same size: only the sha256 differs
    assert load(out, "answers", "prompt_id") == {"test": ["h0", "h1"]}
    other = answers_folder(tmp_path / "other" / "eval", ["g0"])
    assert load(other, "answers", "prompt_id") == {"test": ["g0"]}
