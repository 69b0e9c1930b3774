"""`selfalign eval judge`: how often a judge (and a reward model) agrees with people's labels.

- `human_pairs`, `pair_files`: labelled pairs from TRL rows or HH-RLHF transcripts, in any
  prompt-file format; unusable rows become rejects with a reason.
- `agreement`: accuracy per order with Wilson intervals, first-position rate, calibration,
  reward-model accuracy; the figures people's labels are read with elsewhere too.
- `run`: checks before any model loads, then the judge in both orders over every pair.
- `report`: judge.json, pairs.parquet, report.md and the plots.
- `commands`: the click command.
"""
