"""Reward model training: TRL's RewardTrainer with soft labels and whole prompts per batch element.

TRL's trainer treats every pair as an independent, certain example. Two changes, following the
Constitutional AI and InstructGPT papers:

- Soft labels. A pair carries p = P(chosen ≻ rejected) from the judge, and its loss is the
  cross-entropy −[p·log σ(Δ) + (1 − p)·log σ(−Δ)] with Δ = r(chosen) − r(rejected).
  p = 1 gives TRL's loss.
- Grouping. All comparisons of one prompt are one dataset element, so a batch never splits a
  prompt, and each pair weighs 1 / (that prompt's number of pairs): ranking K answers yields
  C(K, 2) correlated pairs, and shuffled as independent examples they overfit within an epoch.
  The batch loss is the mean over prompts of the mean over their pairs.

Rows come in as TRL conversational pairs plus `preference` and `group` (the prompt's number, see
selfalign.train.data). TRL tokenises them and drops pairs longer than `max_length`; then the pairs
of each group are gathered into one element. TRL still logs accuracy (share of pairs with
r(chosen) > r(rejected)), margin and reward statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F
from trl import RewardTrainer
from trl.trainer.reward_trainer import DataCollatorForPreference

from selfalign.errors import UserError

GROUP_COLUMNS = ("group_chosen_ids", "group_rejected_ids", "group_preference")


def soft_pair_loss(margins: torch.Tensor, preferences: torch.Tensor,
                   weights: torch.Tensor) -> torch.Tensor:
    """Σ_k w_k · −[p_k·log σ(Δ_k) + (1 − p_k)·log σ(−Δ_k)], with Δ_k = r_chosen − r_rejected."""
    margins = margins.float()
    per_pair = -(preferences * F.logsigmoid(margins) + (1 - preferences) * F.logsigmoid(-margins))
    return (weights * per_pair).sum()


def group_pairs(pairs) -> Any:
    """Tokenised pairs (one row each, with `group`) → one row per group holding its pairs."""
    from datasets import Dataset

    groups: dict[int, tuple[list, list, list]] = {}
    for group, chosen, rejected, preference in zip(pairs["group"], pairs["chosen_ids"],
                                                   pairs["rejected_ids"], pairs["preference"]):
        entry = groups.setdefault(group, ([], [], []))
        entry[0].append(chosen)
        entry[1].append(rejected)
        entry[2].append(preference)
    columns = list(zip(*groups.values()))
    return Dataset.from_dict({name: list(column) for name, column in zip(GROUP_COLUMNS, columns)})


@dataclass
class PromptGroupCollator:
    """Flattens the pairs of whole prompts into TRL's layout (all chosen, then all rejected).

    Adds `preference` and `pair_weight` per pair; the weights of a batch sum to 1. The pad id is
    read when called, because the trainer settles the tokenizer's pad token after this is made.
    """

    tokenizer: Any
    pad_to_multiple_of: int | None = None

    def __call__(self, groups: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        pad = DataCollatorForPreference(self.tokenizer.pad_token_id, self.pad_to_multiple_of)
        batch = pad([{"chosen_ids": chosen, "rejected_ids": rejected}
                     for group in groups
                     for chosen, rejected in zip(group["group_chosen_ids"],
                                                 group["group_rejected_ids"])])
        sizes = [len(group["group_preference"]) for group in groups]
        batch["preference"] = torch.tensor(
            [p for group in groups for p in group["group_preference"]], dtype=torch.float32)
        batch["pair_weight"] = torch.tensor(
            [1.0 / (size * len(groups)) for size in sizes for _ in range(size)], dtype=torch.float32)
        return batch


class GroupedRewardTrainer(RewardTrainer):
    """RewardTrainer whose dataset elements are prompts, with soft-label loss (module docstring)."""

    def __init__(self, model, args, train_dataset, processing_class, eval_dataset=None,
                 peft_config=None, **kwargs):
        self.pairs_too_long: dict[str, int] = {}  # per dataset: pairs TRL dropped for max_length
        collator = PromptGroupCollator(processing_class, args.pad_to_multiple_of)
        super().__init__(model=model, args=args, data_collator=collator,
                         train_dataset=train_dataset, eval_dataset=eval_dataset,
                         processing_class=processing_class, peft_config=peft_config, **kwargs)

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        if GROUP_COLUMNS[0] in (dataset.column_names or []):
            return dataset  # already grouped (evaluate() prepares again)
        pairs = super()._prepare_dataset(dataset, processing_class, args, dataset_name)
        self.pairs_too_long[dataset_name] = len(dataset) - len(pairs)
        if len(pairs) == 0:
            raise UserError(f"every {dataset_name} pair is longer than max_length="
                            f"{args.max_length} tokens; raise --max-length")
        return group_pairs(pairs)

    def _set_signature_columns_if_needed(self):
        if self._signature_columns is None:
            self._signature_columns = list(GROUP_COLUMNS)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        preferences = inputs.pop("preference")
        weights = inputs.pop("pair_weight")
        # TRL's compute_loss runs the model and logs rewards, accuracy and margin; only its loss
        # (hard labels, every pair weighted alike) is replaced.
        _, outputs = super().compute_loss(model, inputs, return_outputs=True)
        chosen, rejected = torch.chunk(outputs.logits.squeeze(-1), chunks=2)
        loss = soft_pair_loss(chosen - rejected, preferences, weights)
        if self.args.center_rewards_coefficient is not None:
            loss = loss + self.args.center_rewards_coefficient * torch.mean((chosen + rejected) ** 2)
        return (loss, outputs) if return_outputs else loss
