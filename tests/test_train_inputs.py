"""Training inputs: --data parsing and mixing, row checks, config keys; bad input fails before a model loads."""

import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from selfalign.cli import main
from selfalign.errors import UserError
from selfalign.train import run
from selfalign.train.config import resolve_config
from selfalign.train.data import DataSource, load_training_data, weighted
from train_fixtures import error_of, pair_rows, settings, write_run_dir


@pytest.fixture
def run_dir(tmp_path):
    return write_run_dir(tmp_path / "run", {"train": 10, "validation": 4})


# ---------------------------------------------------------------- --data syntax and mixing

def test_data_source_syntax():
    assert DataSource.parse("runs/a") == DataSource(__import__("pathlib").Path("runs/a"), 1.0)
    assert DataSource.parse("runs/a:0.5").weight == 0.5
    assert DataSource.parse("runs/a:2").weight == 2.0
    assert DataSource.parse("runs/a:b").path.name == "a:b"  # not a number: part of the path
    with pytest.raises(UserError, match="weight must be > 0"):
        DataSource.parse("runs/a:0")


def test_weights_repeat_and_sample_deterministically():
    rows = list(range(10))
    assert weighted(rows, 2.0, seed=1) == rows + rows
    half = weighted(rows, 0.5, seed=1)
    assert len(half) == 5 and half == weighted(rows, 0.5, seed=1)
    assert len(weighted(rows, 1.5, seed=1)) == 15


def test_two_folders_mix_by_weight(tmp_path):
    a = write_run_dir(tmp_path / "a", {"train": 10, "validation": 4})
    b = write_run_dir(tmp_path / "b", {"train": 8})
    data = load_training_data("dpo", [DataSource(a), DataSource(b, 0.5)], seed=3)
    assert len(data.train) == 10 + 4
    assert len(data.validation) == 4
    assert [f["train_rows_used"] for f in data.folders] == [10, 4]
    assert data.folders[1]["weight"] == 0.5
    assert len(data.folders[0]["manifest_sha256"]) == 64
    assert set(data.train[0]) == {"prompt", "chosen", "rejected"}


def test_sft_rows_become_prompt_completion(run_dir):
    data = load_training_data("sft", [DataSource(run_dir)])
    first = data.train[0]
    assert first["prompt"] == [{"role": "user", "content": "How do I bake bread?"}]
    assert first["completion"][0]["role"] == "assistant"
    assert first["completion"][0]["content"].startswith("Happy to help!")


# ---------------------------------------------------------------- bad data folders

def test_missing_folder(tmp_path, no_model_load):
    assert "folder does not exist" in error_of("dpo", [tmp_path / "nope"], tmp_path)


def test_folder_without_manifest(run_dir, tmp_path, no_model_load):
    (run_dir / "manifest.json").unlink()
    assert "no manifest.json" in error_of("sft", [run_dir], tmp_path)


def test_folder_without_prefs(run_dir, tmp_path, no_model_load):
    shutil.rmtree(run_dir / "prefs")
    message = error_of("dpo", [run_dir], tmp_path)
    assert f"{run_dir / 'prefs'}: no parquet shards found" in message


def test_empty_train_split(tmp_path, no_model_load):
    folder = write_run_dir(tmp_path / "run", {"train": 0})
    assert "the train split has no rows" in error_of("sft", [folder], tmp_path)


def test_incomplete_shards(tmp_path, no_model_load):
    folder = write_run_dir(tmp_path / "run", {"train": 6}, shards=3)
    (folder / "prefs" / "train-00001-of-00003.parquet").unlink()
    assert "has 2 shard(s) but the names say [3]" in error_of("dpo", [folder], tmp_path)


def write_prefs(folder, rows):
    write_run_dir(folder, {"train": 2})
    pq.write_table(pa.Table.from_pylist(rows), folder / "prefs" / "train-00000-of-00001.parquet")
    return folder


def test_string_prompt_beside_message_lists(tmp_path, no_model_load):
    rows = [{**r, "prompt": r["prompt"][0]["content"]} for r in pair_rows(3, "train")]
    folder = write_prefs(tmp_path / "run", rows)
    assert error_of("dpo", [folder], tmp_path) == (
        f"{folder / 'prefs'} split 'train' row 0: `prompt` is a string; expected a list of "
        "messages (conversational format)")


def test_wrong_role_in_chosen(tmp_path, no_model_load):
    rows = pair_rows(3, "train")
    rows[1]["chosen"] = [{"role": "user", "content": "hi"}]
    folder = write_prefs(tmp_path / "run", rows)
    assert error_of("dpo", [folder], tmp_path) == (
        f"{folder / 'prefs'} split 'train' row 1: `chosen` message 0 has role 'user'; "
        "expected one of ['assistant']")


def test_missing_column(tmp_path, no_model_load):
    rows = [{k: v for k, v in r.items() if k != "rejected"} for r in pair_rows(2, "train")]
    folder = write_prefs(tmp_path / "run", rows)
    assert "missing column(s) ['rejected']" in error_of("dpo", [folder], tmp_path)


def test_sft_messages_must_end_with_assistant(tmp_path, no_model_load):
    folder = write_run_dir(tmp_path / "run", {"train": 2})
    rows = [{"messages": [{"role": "user", "content": "hi"}]}] * 2
    pq.write_table(pa.Table.from_pylist(rows), folder / "sft" / "train-00000-of-00001.parquet")
    assert "must end with an assistant message" in error_of("sft", [folder], tmp_path)


# ---------------------------------------------------------------- model and config

def test_model_path_that_does_not_exist(run_dir, tmp_path, no_model_load):
    message = error_of("sft", [run_dir], tmp_path, model=str(tmp_path / "no-model"))
    assert message.startswith(f"--model {tmp_path / 'no-model'}: no such folder")


def test_model_folder_without_config(run_dir, tmp_path, no_model_load):
    (tmp_path / "empty").mkdir()
    assert "the folder has no config.json" in error_of("dpo", [run_dir], tmp_path, model=str(tmp_path / "empty"))


def test_unknown_config_key_names_nearest(run_dir, tmp_path, no_model_load):
    config = tmp_path / "train.yaml"
    config.write_text("learning_rte: 0.001\n")
    message = error_of("dpo", [run_dir], tmp_path, config_file=config)
    assert message.startswith(f"{config}: unknown DPOConfig field 'learning_rte'. Did you mean: learning_rate?")


def test_unknown_lora_key_names_nearest(run_dir, tmp_path):
    s = settings("sft", [run_dir], tmp_path, overrides={"lora": {"rank": 8}})
    with pytest.raises(UserError, match="unknown LoraConfig field 'rank'. Did you mean: r?"):
        resolve_config(s, has_validation=True)


def test_precedence_trl_defaults_yaml_then_cli(run_dir, tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text("learning_rate: 0.001\nbeta: 0.3\nlora: {r: 4}\n")
    s = settings("dpo", [run_dir], tmp_path, config_file=config, beta=0.2, batch_size=3)
    trl_config, lora = resolve_config(s, has_validation=True)
    assert (trl_config.learning_rate, trl_config.beta) == (0.001, 0.2)
    assert trl_config.per_device_train_batch_size == 3
    assert trl_config.eval_strategy == "steps"
    assert trl_config.use_cpu and not trl_config.bf16
    assert lora["r"] == 4 and lora["target_modules"] == "all-linear"


def test_beta_is_refused_for_sft(run_dir, tmp_path):
    with pytest.raises(UserError, match="DPO settings"):
        settings("sft", [run_dir], tmp_path, beta=0.1)


def test_out_of_memory_names_the_settings_to_lower(run_dir, tmp_path):
    s = settings("dpo", [run_dir], tmp_path, batch_size=16)
    config, _ = resolve_config(s, has_validation=False)
    with pytest.raises(UserError) as err, run.out_of_memory_hint(s, config):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert str(err.value) == (
        "out of memory during training (CUDA out of memory. Tried to allocate 2.00 GiB). Lower "
        "--batch-size (now 16) or --max-length (now 1024); to keep the effective batch, raise "
        "gradient_accumulation_steps in --config (now 1), or train LoRA adapters with --lora.")
    with pytest.raises(RuntimeError, match="shape mismatch"), run.out_of_memory_hint(s, config):
        raise RuntimeError("shape mismatch")


def test_cli_prints_the_message_without_traceback(run_dir, tmp_path):
    shutil.rmtree(run_dir / "sft")
    result = CliRunner().invoke(main, ["train", "sft", "--data", str(run_dir), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {run_dir / 'sft'}: no parquet shards found")
    assert "Traceback" not in result.output


def test_manifest_is_hashed_as_bytes(run_dir):
    import hashlib

    data = load_training_data("dpo", [DataSource(run_dir)])
    expected = hashlib.sha256((run_dir / "manifest.json").read_bytes()).hexdigest()
    assert data.folders[0]["manifest_sha256"] == expected
    assert data.folders[0]["generator_model"] == json.loads((run_dir / "manifest.json").read_text())["model"]


# ---------------------------------------------------------------- rows stay on disk

def test_training_rows_are_memory_mapped_not_copied(run_dir):
    """The mixed rows are Datasets over Arrow files (the trainer reads them from disk)."""
    for kind in ("dpo", "sft"):
        data = load_training_data(kind, [DataSource(run_dir, 1.5)])
        assert data.train.cache_files and len(data.train) == 15  # 10 rows once, then 5 again
        assert data.validation.cache_files and len(data.validation) == 4


def test_multi_turn_sft_rows_split_before_the_last_answer(tmp_path):
    folder = write_run_dir(tmp_path / "run", {"train": 2})
    turns = [{"role": "system", "content": "S"}, {"role": "user", "content": "U1"},
             {"role": "assistant", "content": "A1"}, {"role": "user", "content": "U2"},
             {"role": "assistant", "content": "A2"}]
    rows = [{"messages": turns}, {"messages": turns[1:3]}]
    pq.write_table(pa.Table.from_pylist(rows), folder / "sft" / "train-00000-of-00001.parquet")
    data = load_training_data("sft", [DataSource(folder)])
    assert [data.train[0], data.train[1]] == [
        {"prompt": turns[:4], "completion": turns[4:]},
        {"prompt": turns[1:2], "completion": turns[2:3]}]
