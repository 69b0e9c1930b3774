"""The generate run: the recipe of one sample and the run that drives it over shards.

- `settings`: GenerateSettings, from flags, `--config run.yaml` and a resumed manifest.
- `plan`: every check that can fail on bad input, before any model loads; the recipe.
- `flow`: one sample's conversation (answer, critique, revise, judge) and the shard scheduler.
- `feedback`: the AI judge over a sample's answers (verify, rank) and its run figures.
- `engines`: building the run's engines, describing them, keeping them full.
- `shards`, `rows`: the prompt stream cut into shards; a finished shard's rows and ledger entry.
- `run`: `Run`, the interface both executors drive, and `run_generate`.
- `local`: the executor on this machine's engine; `ray/`: the executor on Ray workers.
- `final`: the end of a run (assembly through `store/`, figures, card); `card`: the dataset card.
- `progress`: the progress line.
- `commands`: the click command.
"""
