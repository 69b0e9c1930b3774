"""TRL's own trainers read generate's prefs/ and sft/ folders as they are: no conversion.

The folder comes from a real runner run (scripted stand-in engine, for speed); the trainers are
plain trl.DPOTrainer / trl.SFTTrainer on the tiny random Llama, one step each.
"""

import pytest

from premise import TEST_SEED
from run_helpers import run_scripted, write_constitution, write_prompts
from train_fixtures import finite_losses

pytestmark = pytest.mark.train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    prompts = write_prompts(root / "p.jsonl", [
        {"id": f"q{i}", "prompt": f"Is it fine to borrow my neighbour's ladder number {i}?"}
        for i in range(6)])
    run_scripted(write_constitution(root / "c"), prompts, root / "out")
    return root / "out"


def one_step_args(config_class, out, **extra):
    return config_class(output_dir=str(out), max_steps=1, per_device_train_batch_size=2,
                        use_cpu=True, bf16=False, report_to="none", save_strategy="no",
                        gradient_checkpointing=False, logging_steps=1, seed=TEST_SEED, **extra)


def files(folder):
    return sorted(str(p) for p in folder.glob("*.parquet"))


@pytest.mark.parametrize("folder, trainer_name", [("prefs", "DPO"), ("sft", "SFT")])
def test_trl_trainer_reads_the_folder(run_dir, tiny_model_dir, tmp_path, folder, trainer_name):
    import trl
    from datasets import load_dataset
    from transformers import AutoTokenizer

    data = load_dataset("parquet", data_files=files(run_dir / folder), split="train")
    config_class = getattr(trl, f"{trainer_name}Config")
    trainer = getattr(trl, f"{trainer_name}Trainer")(
        model=str(tiny_model_dir), train_dataset=data,
        processing_class=AutoTokenizer.from_pretrained(tiny_model_dir),
        args=one_step_args(config_class, tmp_path, max_length=64))
    result = trainer.train()
    finite_losses(trainer.state.log_history, f"generate's {folder}/ folder")
    assert result.global_step == 1 and result.training_loss > 0
