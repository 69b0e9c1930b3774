"""The reward model as an RL reward: a `train rm` folder, scored exactly as it was trained.

`RewardTrainer` tokenised each conversation with `apply_chat_template(prompt + answer,
tokenize=True)` (the template writes the special tokens and the end-of-turn token after the
answer) and read the score at the last token. TRL's RL trainers, given a model, render to text
and tokenise again; this scorer repeats the training path instead, and the test
`test_rl_rm_scores_the_tokens_reward_training_saw` pins that the ids are the same.
"""

from __future__ import annotations

from typing import Any

from selfalign.errors import UserError
from selfalign.eval.reward import check_reward_model

REWARD_NAME = "rm"  # metrics: rewards/rm/mean


def load_reward_tokenizer(path: str, policy_tokenizer):
    """The reward model's own tokenizer, checked against the policy's chat template."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError, TypeError) as err:
        raise UserError(f"--reward-model {path}: cannot load its tokenizer ({err}); the folder "
                        "must hold the tokenizer `train rm` saved beside the model") from None
    if not tokenizer.chat_template:
        raise UserError(f"--reward-model {path}: its tokenizer has no chat template, so it cannot "
                        "score conversations as it was trained on them")
    if tokenizer.chat_template != policy_tokenizer.chat_template:
        raise UserError(f"--reward-model {path}: its chat template differs from the policy's "
                        f"({len(tokenizer.chat_template)} vs {len(policy_tokenizer.chat_template)} "
                        "characters); train the reward model from the same family as --model so "
                        "that both read the conversation the same way")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def check_reward_folder(path: str, policy_tokenizer):
    """A one-label classifier with a tokenizer whose chat template is the policy's."""
    folder = check_reward_model(path)
    return folder, load_reward_tokenizer(folder, policy_tokenizer)


def conversation_ids(tokenizer, prompt: list[dict], completion: list[dict]) -> list[int]:
    """The ids `RewardTrainer` trains on for `prompt + completion` (TRL's `_tokenize`)."""
    return list(tokenizer.apply_chat_template(prompt + completion, tokenize=True,
                                              return_dict=True)["input_ids"])


class RewardModelScore:
    """Reward function `f(prompts, completions, **kw) -> scores` over a one-label classifier."""

    __name__ = REWARD_NAME

    def __init__(self, folder: str, tokenizer, batch_size: int = 8):
        import torch
        from transformers import AutoModelForSequenceClassification

        self.folder, self.tokenizer, self.batch_size = folder, tokenizer, batch_size
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = "auto" if self.device == "cuda" else torch.float32
        self.model = AutoModelForSequenceClassification.from_pretrained(
            folder, num_labels=1, dtype=dtype).to(self.device)
        self.model.config.pad_token_id = tokenizer.pad_token_id  # the score is read at the last token
        self.model.eval()

    def token_ids(self, prompts: list[list[dict]], completions: list[list[dict]]) -> list[list[int]]:
        return [conversation_ids(self.tokenizer, p, c) for p, c in zip(prompts, completions)]

    def __call__(self, prompts, completions, **_: Any) -> list[float]:
        import torch

        # Right padding with an attention mask, as RewardTrainer's collator batches pairs.
        ids = self.token_ids(prompts, completions)
        scores: list[float] = []
        with torch.inference_mode():
            for start in range(0, len(ids), self.batch_size):
                batch = ids[start:start + self.batch_size]
                width = max(len(x) for x in batch)
                pad = self.tokenizer.pad_token_id
                input_ids = torch.tensor([x + [pad] * (width - len(x)) for x in batch])
                mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in batch])
                logits = self.model(input_ids=input_ids.to(self.device),
                                    attention_mask=mask.to(self.device)).logits
                scores.extend(logits[:, 0].float().tolist())
        return scores
