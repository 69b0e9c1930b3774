"""SFT, DPO, reward-model and RL training over TRL on selfalign outputs.

- `data`: read and check run folders (`sft/`, `prefs/`), mix several by weight, group a prompt's
  pairs for the reward model, filter by judge preference.
- `config`: CLI options + `--config train.yaml` → a TRL `SFTConfig` / `DPOConfig` / `RewardConfig`.
- `reward`: TRL's `RewardTrainer` with soft labels and whole prompts per batch element.
- `run`: `train(TrainSettings)` checks everything, runs TRL's trainer, saves the model and
  `selfalign-train.json`.
- `rl/`: `train rl`, RLOO/GRPO from the SFT model against the reward model or the live judge.
- `commands`: the `selfalign train sft|dpo|rm|rl` click group.
"""
