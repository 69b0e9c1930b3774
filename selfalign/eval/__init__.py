"""`selfalign eval`: did training help? A candidate against its baseline under the constitution.

- `settings`: EvalSettings, checked in `__post_init__` (engine fields named as generate's).
- `run`: checks before any model loads, both models' answers, the judge in both orders.
- `outcomes`: win / tie / loss per prompt, counts, Wilson intervals, tables by group.
- `refusal`: the refusal detector and the benign-prompt marks behind over-refusal.
- `results`: per-prompt rows and every figure of eval.json.
- `reward`: an optional reward model's scores.
- `report`: eval.json, answers.parquet, report.md and the plots.
- `commands`: the click command.
- `judge/`: `eval judge`, a judge (and a reward model) against human labels.
"""
