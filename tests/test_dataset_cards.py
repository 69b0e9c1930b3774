"""Every folder selfalign hands over loads through its card as it was written: each config of a
run, a label export and an eval folder gives exactly its files' splits and rows, and the card's
YAML is what the Hub's own card classes and `datasets` accept."""

import hashlib
from collections import Counter

import datasets
import pyarrow.parquet as pq
import pytest
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard

from selfalign.errors import UserError
from selfalign.generate.settings import GenerateSettings
from selfalign.hub_card import size_category, source_datasets
from selfalign.label.export import export_labels
from selfalign.label.project import open_project

from label_helpers import put_answers, synthetic_run, write_tasks
from run_helpers import run_scripted, write_constitution, write_prompts

# 7 prompts: 3 train, 2 validation, 2 test (the split column of each prompt row).
SPLITS = ["train", "validation", "test", "train", "validation", "test", "train"]


def three_split_run(tmp_path, **overrides):
    rows = [{"id": f"q{i}", "prompt": f"Question {i}?", "split": split}
            for i, split in enumerate(SPLITS)]
    manifest = write_constitution(tmp_path / "constitution")
    run_scripted(manifest, write_prompts(tmp_path / "prompts.jsonl", rows), tmp_path / "run",
                 **overrides)
    return tmp_path / "run"


def file_splits(folder):
    """{split: rows} read from the parquet files themselves, by their names."""
    counts = Counter()
    for f in folder.glob("*.parquet"):
        counts[f.name.split("-")[0]] += pq.read_metadata(f).num_rows
    return dict(counts)


def loaded(folder, config):
    found = datasets.load_dataset(str(folder), config)
    return {split: found[split].num_rows for split in found}, found


def card_of(folder):
    """The card through huggingface_hub's own parsing (metadata errors raise), and `datasets`'
    check of its configs, the one `load_dataset` makes."""
    card = DatasetCard.load(folder / "README.md")
    MetadataConfigs.from_dataset_card_data(card.data)
    return card


def test_each_config_of_a_three_split_run_loads_with_the_files_splits(tmp_path):
    run = three_split_run(tmp_path)
    for config in ("prefs", "sft", "traces"):
        counts, _ = loaded(run, config)
        assert counts == file_splits(run / config)
    assert loaded(run, "prefs")[0] == {"train": 3, "validation": 2, "test": 2}
    assert loaded(run, "traces")[0] == {"traces": 7}
    prefs = loaded(run, "prefs")[1]
    train_ids = set(prefs["train"]["prompt_id"])
    assert train_ids == {"q0", "q3", "q6"}
    assert not train_ids & set(prefs["test"]["prompt_id"])
    assert not train_ids & set(prefs["validation"]["prompt_id"])


def test_the_default_config_is_prefs(tmp_path):
    run = three_split_run(tmp_path)
    assert set(datasets.load_dataset(str(run))) == {"train", "validation", "test"}
    assert set(datasets.load_dataset(str(run))["test"].column_names) >= {"chosen", "rejected"}


def test_a_one_split_run_has_one_split_per_config(tmp_path):
    rows = [{"id": f"q{i}", "prompt": f"Question {i}?"} for i in range(3)]
    run = tmp_path / "run"
    run_scripted(write_constitution(tmp_path / "c"), write_prompts(tmp_path / "p.jsonl", rows),
                 run)
    assert loaded(run, "prefs")[0] == {"train": 3}
    assert loaded(run, "sft")[0] == {"train": 3}
    assert card_of(run).data.configs[0]["data_files"] == [
        {"split": "train", "path": "prefs/train-*.parquet"}]


def test_the_run_card_passes_the_hub_card_checks_and_names_who_picks_the_license(tmp_path):
    card = card_of(three_split_run(tmp_path))
    data = card.data.to_dict()
    assert data["license"] == "other"
    assert data["license_name"] == "to-be-chosen-by-the-publisher"
    assert "Whoever publishes this folder must replace `license: other`" in card.text
    assert data["size_categories"] == ["n<1K"]
    assert data["task_categories"] == ["text-generation"]
    assert "constitutional-ai" in data["tags"] and "source_datasets" not in data
    assert [c["config_name"] for c in data["configs"]] == ["prefs", "sft", "traces"]
    assert data["configs"][0]["default"] is True
    assert data["configs"][0]["data_files"] == [
        {"split": "train", "path": "prefs/train-*.parquet"},
        {"split": "validation", "path": "prefs/validation-*.parquet"},
        {"split": "test", "path": "prefs/test-*.parquet"}]
    assert "## Counts" in card.text  # the run's figures are still there


def test_a_chosen_license_goes_in_the_card_without_a_license_name(tmp_path):
    data = card_of(three_split_run(tmp_path, license="apache-2.0")).data.to_dict()
    assert data["license"] == "apache-2.0" and "license_name" not in data


def test_a_license_that_is_no_hub_id_is_refused():
    with pytest.raises(UserError, match="license: 'Apache 2.0' is not a license id"):
        GenerateSettings(license="Apache 2.0")


def test_size_categories_at_their_bounds():
    assert [size_category(n) for n in (0, 999, 1000, 9999, 10_000, 999_999, 1_000_000)] == [
        "n<1K", "n<1K", "1K<n<10K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M"]


def test_prompts_from_the_hub_cache_name_their_dataset():
    cache = "/home/a/.cache/huggingface/hub/datasets--Anthropic--hh-rlhf/snapshots/09be8c5/x.jsonl"
    assert source_datasets([cache, "local.jsonl", cache]) == ["extended|Anthropic/hh-rlhf"]
    assert source_datasets(["data/datasets-of-mine/p.jsonl"]) == []


def test_a_label_export_loads_through_its_card(tmp_path):
    run = synthetic_run(tmp_path / "run", 4, splits=("train", "test"))
    write_tasks(run, "    overlap: 1.0\n")
    project = open_project(run, log=lambda m: None)
    put_answers(project, {"pat": {"p0": 0, "p1": 1, "p2": "tie", "p3": 0}})
    export_labels(project, tmp_path / "human")
    human = tmp_path / "human"
    counts, found = loaded(human, "prefs")
    assert counts == file_splits(human / "prefs") == {"train": 2, "test": 2}
    assert not set(found["train"]["prompt_id"]) & set(found["test"]["prompt_id"])
    data = card_of(human).data.to_dict()
    assert [c["config_name"] for c in data["configs"]] == ["prefs"]  # no rewrites: no sft files


def test_verify_passes_a_label_export_and_finds_a_file_cut_short(tmp_path):
    from selfalign.store.verify import verify_folder

    run = synthetic_run(tmp_path / "run", 2)
    write_tasks(run, "    overlap: 1.0\n")
    project = open_project(run, log=lambda m: None)
    put_answers(project, {"pat": {"p0": 0, "p1": 1}})
    human = tmp_path / "human"
    export_labels(project, human)
    verdict = verify_folder(human)
    assert verdict.problems == [] and verdict.unchecked == []
    assert verdict.checked[-1] == "row counts equal the manifest's counts (prefs/train 2)"
    shard = human / "prefs" / "train-00000-of-00001.parquet"
    shard.write_bytes(shard.read_bytes()[:-5])
    assert any("truncated" in p for p in verify_folder(human).problems)


def test_a_prepared_folder_of_hub_prompts_names_the_dataset(tmp_path):
    from selfalign.generate.card import prompt_inputs
    from selfalign.prompts.prepare import PrepareSettings, prepare

    cache = tmp_path / "hub" / "datasets--HuggingFaceH4--prompts" / "snapshots" / "abc123"
    cache.mkdir(parents=True)
    source = write_prompts(cache / "train.jsonl", [{"id": "a", "prompt": "Hello there?"}])
    prepare([str(source)], tmp_path / "prepared", PrepareSettings())
    inputs = list(prompt_inputs([str(tmp_path / "prepared")]))
    assert inputs == [str(tmp_path / "prepared"), str(source)]
    assert source_datasets(inputs) == ["extended|HuggingFaceH4/prompts"]


def test_the_card_describes_each_config_s_files_so_datasets_caches_them_apart(tmp_path):
    run = three_split_run(tmp_path)
    info = {entry["config_name"]: entry for entry in card_of(run).data.to_dict()["dataset_info"]}
    assert list(info) == ["prefs", "sft", "traces"]
    prefs = info["prefs"]
    assert [(s["name"], s["num_examples"]) for s in prefs["splits"]] == [
        ("train", 3), ("validation", 2), ("test", 2)]
    files = [run / "prefs" / f"{split}-00000-of-00001.parquet"
             for split in ("train", "validation", "test")]
    assert prefs["download_size"] == sum(f.stat().st_size for f in files)
    assert prefs["dataset_size"] == sum(s["num_bytes"] for s in prefs["splits"]) > 0
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"prefs/{f.name} {hashlib.sha256(f.read_bytes()).hexdigest()}\n".encode())
    assert digest.hexdigest() in prefs["description"]


def test_a_file_changed_after_its_card_fails_to_load_instead_of_loading_quietly(tmp_path):
    run = three_split_run(tmp_path)
    train = run / "prefs" / "train-00000-of-00001.parquet"
    pq.write_table(pq.read_table(train).slice(0, 1), train)
    with pytest.raises(datasets.exceptions.NonMatchingSplitsSizesError):
        datasets.load_dataset(str(run), "prefs", cache_dir=str(tmp_path / "cache"))
