"""SFT and DPO training over TRL on selfalign outputs.

- `data`: read and check run folders (`sft/`, `prefs/`), mix several by weight.
- `config`: CLI options + `--config train.yaml` → a TRL `SFTConfig` / `DPOConfig`.
- `run`: `train(TrainSettings)` checks everything, runs TRL's trainer, saves the model and
  `selfalign-train.json`.
- `commands`: the `selfalign train sft|dpo` click group.
"""
