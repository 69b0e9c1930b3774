"""`selfalign train rl`: RLOO or GRPO from the SFT model against a reward model or the live judge.

- `settings`: RLSettings, checked before anything loads; the TRL config they become.
- `prompts`: the prompts the policy answers, and the held-out ones the watch scores.
- `reward_model`, `judge`: the two reward sources (a `train rm` folder; the judge's both-order
  preference over the SFT model's answer).
- `outputs`: what a run writes while it trains (metrics, samples, the reward/KL plot).
- `watch`: the reward-hacking watch (held-out reward, judge win rate, lengths at start and end).
- `run`: plan and run, over TRL's RLOOTrainer or GRPOTrainer.
"""
