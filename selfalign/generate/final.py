"""The end of a run: the run folder assembles the data (store/assemble.py); this adds what only
generation knows (the AI-feedback figures, the preference histogram, the dataset card) and
closes the manifest. An input with no usable prompt ends as an empty run instead."""

from __future__ import annotations

import time

from selfalign.atomic import write_json, write_text
from selfalign.generate.behavior_figures import run_behaviors
from selfalign.generate.card import dataset_card
from selfalign.generate.check_figures import run_check_figures
from selfalign.generate.feedback import run_figures
from selfalign.generate.plan import Plan
from selfalign.stages.judge_figures import write_preference_histogram
from selfalign.store.assemble import assemble, describe_final_files, lengths
from selfalign.store.empty import empty_run
from selfalign.store.layout import CARD, HISTOGRAM, MANIFEST
from selfalign.store.ledger import ledger_field, writing
from selfalign.store.shard_files import drop_shard_files


def finish_run(plan: Plan, ledger: dict[int, dict], manifest: dict) -> dict:
    """Final files from the ledger's shards (or an empty run's error); the final manifest."""
    out = plan.out
    if not any(entry["prompts"] for entry in ledger.values()):
        with writing(out, "the rejects"):
            raise empty_run(out, ledger, manifest, plan.settings.prompts)
    with writing(out, "the final outputs"):
        counts = assemble(out, ledger)
        settings = manifest["settings"]
        if settings.get("feedback"):
            judgments = (r for records in ledger_field(out, "judgments") for r in records or ())
            figures, preferences = run_figures(judgments, settings["min_preference"])
            counts["feedback"] = {"mode": settings["feedback"], **figures}
            write_preference_histogram(preferences, out / HISTOGRAM)
        behaviors = run_behaviors(e.get("behaviors") for e in ledger.values())
        if behaviors:
            counts["behaviors"] = behaviors
        if uses_checks(plan):
            counts["checks"] = run_check_figures((e.get("checks") for e in ledger.values()),
                                                 counts)
        write_text(out / CARD, dataset_card(out, manifest, counts, lengths(out / "prefs"),
                                            plan.constitution))
        manifest.update(status="complete", finished=time.time(), counts=counts,
                        files=describe_final_files(out))
        write_json(out / MANIFEST, manifest)
    drop_shard_files(out)
    return manifest


def uses_checks(plan: Plan) -> bool:
    constitution = plan.constitution
    return bool(constitution.checks) or any(p.checks for p in constitution.principles)
