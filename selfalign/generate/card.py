"""The dataset card (README.md) written beside the data: what it is and how it was made."""

from __future__ import annotations

import json
from pathlib import Path

from selfalign.constitution import Constitution
from selfalign.generate.behavior_figures import behavior_section
from selfalign.hub_card import (DEFAULT_LICENSE, card_data, card_text, license_note,
                                source_datasets, split_paths)
from selfalign.prompts.sources import PREPARED_REPORT
from selfalign.store.layout import FINAL_FOLDERS, written_splits

TAGS = ("constitutional-ai", "dpo", "sft", "preference")


def _table(rows: list[tuple], header: tuple) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _rate(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _tokens(value) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _model(manifest: dict) -> str:
    """The model as it travels: its name, and what pins it down (package version or hashes)."""
    found = manifest.get("model_provenance") or {}
    if found.get("source") == "embedded":
        return (f"`{manifest['model']}` (embedded in the package {found['package']} "
                f"{found['package_version']}, {found['dtype']})")
    if found.get("config_sha256"):
        return (f"`{manifest['model']}` (a local checkpoint; config sha256 "
                f"{found['config_sha256'][:12]}…, in `manifest.json`)")
    return f"`{manifest['model']}`"


def _feedback_section(figures: dict | None) -> str:
    if not figures:
        return ""
    if figures["mode"] == "verify":
        what = ("The judge compared each final revision with its first answer "
                f"(`preference` = P(chosen ≻ rejected)); pairs below {figures['min_preference']} "
                f"went to rejects as `judge_prefers_rejected`. Share confirmed: "
                f"{_rate(figures['confirmed_share'])}.")
    else:
        what = ("The judge compared every pair of a prompt's final answers; each pair is written "
                "oriented by it (`preference` = P(chosen ≻ rejected) ≥ 0.5), and each answer's "
                "`rank` and Bradley–Terry `score` are in `traces/`.")
    rows = [("pairs judged", figures["pairs_judged"]), ("judge failures", figures["failures"]),
            ("mean preference", _rate(figures["mean_preference"])),
            ("orders disagreed (position-inconsistent)",
             _rate(figures["order_disagreement_rate"])),
            ("first position won, before averaging the orders",
             _rate(figures["first_position_win_rate"]))]
    return f"""## AI feedback ({figures['mode']})

{what} Every comparison was asked in both orders and the two labels averaged.

{_table(rows, ("figure", "value"))}

![preference histogram](preference_histogram.png)

"""


def _checks_section(figures: dict | None, retries: int) -> str:
    if not figures:
        return ""
    header = ("first answers", "passed", "kept revisions", "passed", "not applicable",
              "retries", "retry output tokens")

    def rows(lines: dict, *extra: str) -> list[tuple]:
        return [(f"`{name}`", f["first_answers"], _rate(f["first_pass_rate"]),
                 f["kept_revisions"], _rate(f["kept_pass_rate"]), _not_applicable(f),
                 f["retries"], f["retry_output_tokens"], *(f.get(key, 0) for key in extra))
                for name, f in lines.items()]

    return f"""## Checks

Code checked every first answer (against the constitution's checks and those of the principle
drawn for round 1) and every revision (the constitution's and its round's principle's). A
revision that failed was asked again with the failing checks' messages, at most {retries}
time(s); a kept revision is the one a round ends with. {figures['check_failed']} sample(s) whose
final revision still failed went to rejects as `check_failed`, and
{figures.get('echoes_instruction', 0)} whose kept revision echoed its instructions (the critique or
revision request, or a check's message) or quoted what it was told to write, talking about the
rule instead of following it, as `echoes_instruction`. Retries: {figures['retries']},
costing {figures['retry_output_tokens']} output tokens. Yield: {_rate(figures['pairs_per_prompt'])}
kept pairs per prompt, {_tokens(figures['output_tokens_per_pair'])} output tokens per kept pair.
A check whose `when:` a prompt does not match was not run on its texts: those are counted under
"not applicable" (first answers + kept revisions), never as passed or failed.

{_table(rows(figures["principles"], "echoes_rejected"), ("principle", *header, "echoes rejected"))}

{_table(rows(figures["checks"]), ("check", *header))}

"""


def _not_applicable(line: dict) -> int:
    # Runs from before `when:` have no such counts.
    return line.get("first_not_applicable", 0) + line.get("kept_not_applicable", 0)


def _warning(figures: dict | None) -> str:
    warning = (figures or {}).get("warning")
    return f"> **Warning.** {warning}\n\n" if warning else ""


def run_card_data(out: Path, manifest: dict, pairs: int):
    """The card's YAML: one config per final folder (prefs first, the default), one data_files
    entry per split written, so `load_dataset(out, "prefs")` keeps train, validation and test."""
    settings = manifest["settings"]
    configs = {folder: split_paths(folder, written_splits(out / folder))
               for folder in FINAL_FOLDERS}
    return card_data(out, configs, pairs, settings.get("license", DEFAULT_LICENSE), TAGS,
                     source_datasets(list(prompt_inputs(settings.get("prompts", [])))))


def prompt_inputs(paths: list[str]):
    """The prompt inputs, and for a prepared folder the inputs its report names."""
    for path in paths:
        yield path
        report = Path(path) / PREPARED_REPORT
        if report.is_file():
            yield from json.loads(report.read_text(encoding="utf-8")).get("inputs", [])


def dataset_card(out: Path, manifest: dict, counts: dict, lengths: dict,
                 constitution: Constitution) -> str:
    pairs = sum(counts["pairs"].values())
    return card_text(run_card_data(out, manifest, pairs),
                     _body(manifest, counts, lengths, constitution))


def _body(manifest: dict, counts: dict, lengths: dict, constitution: Constitution) -> str:
    settings = manifest["settings"]
    pairs = sum(counts["pairs"].values())
    principle_rows = sorted(counts["principles"].items(), key=lambda kv: -kv[1])
    length_rows = [(col, v["mean"], v["median"], v["max"]) for col, v in lengths.items()]
    split_rows = [(s, counts["pairs"].get(s, 0), counts["sft"].get(s, 0))
                  for s in sorted(set(counts["pairs"]) | set(counts["sft"]))]
    reject_rows = sorted(counts["rejects"].items(), key=lambda kv: -kv[1])
    checks = _checks_section(counts.get("checks"), settings.get("check_retries", 0))
    return f"""# Constitutional self-critique data (selfalign {manifest['selfalign_version']})

{_warning(counts.get("feedback"))}Made by `selfalign generate`: the model {_model(manifest)} answered each prompt, critiqued
its answer under a principle drawn from the constitution, and revised it
({manifest['rounds']} round(s), a fresh principle each round). `prefs/` holds preference pairs
in TRL's conversational format (chosen = final revision, rejected = first answer); `sft/` holds
the prompt with its final revision as `messages`; `traces/` holds every turn. Each is a config
of this card with its splits: `datasets.load_dataset(FOLDER, "prefs")` gives train, validation
and test as they were written.

## Counts

{counts['prompts']} prompts × {settings['samples']} sample(s) = {counts['samples']} samples →
{pairs} preference pairs. Output tokens: {counts['output_tokens']}; prompt tokens:
{counts['prompt_tokens']} ({counts['cached_prompt_tokens']} served from the prefix cache).

{_table(split_rows, ("split", "pairs", "sft rows"))}

Rows not used, by reason (details in `rejects.parquet`):

{_table(reject_rows, ("reason", "rows")) if reject_rows else "none"}

{_feedback_section(counts.get("feedback"))}{behavior_section(counts.get("behaviors"))}{checks}## Principle mix (draws over all rounds)

{_table(principle_rows, ("principle", "draws")) if principle_rows else "none"}

## Lengths in characters

{_table(length_rows, ("column", "mean", "median", "max")) if length_rows else "no pairs"}

## Sampling

temperature {settings['temperature']}, top_p {settings['top_p']}, max_tokens
{settings['max_tokens']}, seed {settings['seed']}; system prompt:
{constitution.system_prompt or "(none)"}; few-shot exemplars: {len(constitution.exemplars)}.

## License and use

{license_note(settings.get("license", DEFAULT_LICENSE))}

The texts were written by the model named above; its license governs their use. The prompts
come from the inputs listed in `manifest.json` (with their sha256). The data is meant to train
models to be helpful, honest and harmless; rejected answers may contain the unsafe content the
revision removed, so do not use `rejected` as training targets.
"""
