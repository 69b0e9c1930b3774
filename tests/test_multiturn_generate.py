"""Multi-turn prompts through generate: prefs and sft keep the whole conversation, TRL trains on it.

The run uses the scripted stand-in engine (it answers "first answer to: <last message>"), so the
rows are exact; the trainer is plain trl.DPOTrainer on the tiny random Llama, one step.
"""

import pyarrow.parquet as pq
import pytest

from premise import TEST_SEED
from run_helpers import run_scripted, write_constitution, write_prompts
from train_fixtures import finite_losses

pytestmark = pytest.mark.train


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


CONVERSATIONS = {
    "garden": [user("My tomato leaves are turning yellow."), assistant("Check whether the soil stays wet."),
               user("It does. What now?")],
    "trip": [user("Plan a day in Lisbon."), assistant("Start at Belém, then walk to Alfama."),
             user("And if it rains?"), assistant("Visit the tile museum and the oceanarium."),
             user("Where should we eat?")],
    "single": [user("Name a quiet board game.")],
    "sharegpt": [user("Is {x} or %s kept as written?"), assistant("Yes."), user("Even </s>?")],
}


def _source_rows() -> list[dict]:
    rows = [{"id": key, "messages": CONVERSATIONS[key]} for key in ("garden", "trip")]
    rows.append({"id": "single", "prompt": "Name a quiet board game."})
    rows.append({"id": "sharegpt", "conversations": [
        {"from": "system", "value": "Be brief."},
        *({"from": "human" if m["role"] == "user" else "gpt", "value": m["content"]} for m in CONVERSATIONS["sharegpt"])]})
    return rows


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("multiturn")
    prompts = write_prompts(root / "p.jsonl", _source_rows())
    run_scripted(write_constitution(root / "c"), prompts, root / "out")
    return root / "out"


def _rows(folder):
    return [row for path in sorted(folder.glob("*.parquet")) for row in pq.read_table(path).to_pylist()]


def test_prefs_prompt_is_the_whole_conversation(run_dir):
    prefs = {row["prompt_id"]: row for row in _rows(run_dir / "prefs")}
    assert sorted(prefs) == sorted(CONVERSATIONS)
    for key, conversation in CONVERSATIONS.items():
        row = prefs[key]
        assert row["prompt"] == conversation  # the system turn of the source is not sent
        # The first answer answers the last user turn, with the earlier turns as its context.
        assert row["rejected"] == [assistant(f"first answer to: {conversation[-1]['content']}")]
        assert [m["role"] for m in row["chosen"]] == ["assistant"]


def test_sft_messages_are_the_conversation_and_the_final_answer(run_dir):
    prefs = {row["prompt_id"]: row for row in _rows(run_dir / "prefs")}
    sft = _rows(run_dir / "sft")
    assert sorted(row["prompt_id"] for row in sft) == sorted(CONVERSATIONS)
    for row in sft:
        conversation = CONVERSATIONS[row["prompt_id"]]
        assert row["messages"] == conversation + prefs[row["prompt_id"]]["chosen"]


def test_dpo_trains_on_multiturn_prefs(run_dir, tiny_model_dir, tmp_path):
    import trl
    from datasets import load_dataset
    from transformers import AutoTokenizer

    files = sorted(str(p) for p in (run_dir / "prefs").glob("*.parquet"))
    data = load_dataset("parquet", data_files=files, split="train")
    args = trl.DPOConfig(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=2,
                         use_cpu=True, bf16=False, report_to="none", save_strategy="no",
                         gradient_checkpointing=False, logging_steps=1, max_length=128,
                         seed=TEST_SEED)
    trainer = trl.DPOTrainer(model=str(tiny_model_dir), train_dataset=data, args=args,
                             processing_class=AutoTokenizer.from_pretrained(tiny_model_dir))
    result = trainer.train()
    finite_losses(trainer.state.log_history, "multi-turn prefs")
    assert result.global_step == 1 and result.training_loss > 0
