"""A reward model's score of each answer: a sequence classifier with one label, as TRL's
RewardTrainer makes. Checked from its config.json before anything loads."""

from __future__ import annotations

import json
from pathlib import Path

from selfalign.errors import UserError

BATCH_SIZE = 8
MAX_TOKENS = 4096  # longer conversations lose their start, never the answer


def check_reward_model(path: str) -> str:
    """The reward model's folder, resolved, if its config says it is a one-label classifier."""
    folder = Path(path).expanduser()
    config_file = folder / "config.json"
    if not folder.is_dir():
        raise UserError(f"--reward-model {path}: no such folder. Give the --out folder of a "
                        f"reward model (a sequence classifier with one label)")
    if not config_file.is_file():
        raise UserError(f"--reward-model {path}: the folder has no config.json, so it is not a "
                        f"Hugging Face checkpoint")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"--reward-model {config_file}: cannot read it ({err})") from None
    architectures = config.get("architectures") or []
    if not any(str(a).endswith("ForSequenceClassification") for a in architectures):
        found = ", ".join(map(str, architectures)) or "none named"
        raise UserError(f"--reward-model {path}: not a sequence classifier (architectures: "
                        f"{found}); a reward model is an AutoModelForSequenceClassification "
                        f"with one label")
    labels = len(config["id2label"]) if config.get("id2label") else config.get("num_labels", 2)
    if labels != 1:
        raise UserError(f"--reward-model {path}: the classifier has {labels} labels; a reward "
                        f"model has exactly one (a scalar score)")
    return str(folder.resolve())


def score_answers(model: str, conversations: list[list[dict]], answers: list[str]) -> list[float]:
    """The reward of each answer after its conversation (chat template of the reward model)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.truncation_side = "left"
    net = AutoModelForSequenceClassification.from_pretrained(
        model, dtype="auto" if device == "cuda" else torch.float32).to(device)
    net.config.pad_token_id = tokenizer.pad_token_id
    net.eval()
    texts = [_rendered(tokenizer, conversation, answer)
             for conversation, answer in zip(conversations, answers)]
    # Batches of similar length waste little on padding; scores go back in the given order.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    scores: list[float] = [0.0] * len(texts)
    with torch.no_grad():
        for start in range(0, len(order), BATCH_SIZE):
            picked = order[start:start + BATCH_SIZE]
            batch = tokenizer([texts[i] for i in picked], return_tensors="pt", padding=True,
                              truncation=True, max_length=MAX_TOKENS,
                              add_special_tokens=False).to(device)
            for i, score in zip(picked, net(**batch).logits[:, 0].float().tolist()):
                scores[i] = score
    return scores


def _rendered(tokenizer, conversation: list[dict], answer: str) -> str:
    messages = [*conversation, {"role": "assistant", "content": answer}]
    if tokenizer.chat_template:
        return tokenizer.apply_chat_template(messages, tokenize=False)
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in messages)
