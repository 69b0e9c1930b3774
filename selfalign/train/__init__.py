"""SFT, DPO and reward-model training over TRL on selfalign outputs.

- `data`: read and check run folders (`sft/`, `prefs/`), mix several by weight, group a prompt's
  pairs for the reward model, filter by judge preference.
- `config`: CLI options + `--config train.yaml` → a TRL `SFTConfig` / `DPOConfig` / `RewardConfig`.
- `reward`: TRL's `RewardTrainer` with soft labels and whole prompts per batch element.
- `run`: `train(TrainSettings)` checks everything, runs TRL's trainer, saves the model and
  `selfalign-train.json`.
- `commands`: the `selfalign train sft|dpo|rm` click group.
"""
