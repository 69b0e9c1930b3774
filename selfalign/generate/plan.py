"""A generate run's plan: every check that can fail on bad input, before any model loads.

Order matters: principles, prompts paths, model path, output folder and resume fingerprint are
all checked here, so a typo costs seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from selfalign.constitution import Constitution, load_constitution
from selfalign.engine.base import SamplingSettings
from selfalign.engine.provenance import model_provenance
from selfalign.errors import NothingToDo, UserError
from selfalign.generate.feedback import Feedback
from selfalign.generate.flow import Recipe
from selfalign.generate.settings import GenerateSettings
from selfalign.stages.judge import check_judge_ready
from selfalign.store.layout import MANIFEST
from selfalign.store.ledger import fingerprint_changes, input_hashes, prepare_output_folder
from selfalign.store.lock import refuse_if_locked


@dataclass
class Plan:
    """What was checked and resolved before any model loads."""

    settings: GenerateSettings
    out: Path
    constitution: Constitution
    rounds: int
    model: str
    fingerprint: dict
    judge_model: str | None = None  # None: the run's own engine judges


def plan_run(settings: GenerateSettings, resolve_model: Callable[[str | None], str],
             resolve_judge: Callable[[str | None], str] | None = None,
             check_judge: Callable[[str], None] | None = None) -> Plan:
    """Every check that can fail on bad input; nothing loads a model.

    `resolve_judge` checks `--judge-model` (default: `resolve_model`); `check_judge` refuses a
    judge that cannot give option log-probabilities (the CLI passes the engine module's).
    """
    if not settings.principles:
        raise UserError("no principles given: pass --principles with a file, folder or manifest")
    if not settings.prompts:
        raise UserError("no prompts given: pass --prompts with a file, folder, or - for stdin")
    for path in settings.prompts:
        if path != "-" and not Path(path).exists():
            raise UserError(f"--prompts {path}: no such file or folder")
    constitution = load_constitution(settings.principles)
    rounds = run_rounds(settings, constitution)
    if settings.feedback:
        check_judge_ready(constitution, settings.judge_principles)
    out = Path(settings.out)
    refuse_if_locked(out)
    prepare_output_folder(out, settings.resume)
    model = resolve_model(settings.model)
    judge_model = None
    if settings.feedback and (settings.judge_model or settings.judge_base_url):
        judge_model = (resolve_judge or resolve_model)(settings.judge_model)
    if settings.feedback and check_judge:
        check_judge(judge_model or model)
    # Models by what they are, not where they lie: a run resumes on another machine, and a
    # checkpoint whose config or weights changed is another model.
    fingerprint = {"config": {**settings.fingerprint_config(), "rounds": rounds,
                              "model": model_provenance(model),
                              "judge_model": judge_model and model_provenance(judge_model)},
                   "principle_files": dict(constitution.files),
                   "inputs": input_hashes(settings.prompts)}
    if settings.resume:
        _check_resumable(out, fingerprint)
    return Plan(settings, out, constitution, rounds, model, fingerprint, judge_model)


def _check_resumable(out: Path, fingerprint: dict) -> None:
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    changes = fingerprint_changes(manifest.get("fingerprint", {}), fingerprint)
    if changes:
        raise UserError(f"cannot resume {out}: the run started with other settings or files:\n  "
                        + "\n  ".join(changes)
                        + "\nRestore them, or start a new run in another --out folder.")
    if manifest.get("status") == "complete":
        # Success, not an error: a requeued job that always passes --resume must not fail.
        raise NothingToDo(f"the run in {out} is already complete: nothing to resume. Its data is "
                          f"in prefs/, sft/ and traces/; choose another --out for a new run")
    if "-" in fingerprint["inputs"]:
        raise UserError("cannot resume a run that read prompts from stdin: its input cannot be "
                        "checked or read again; save the prompts to a file")


def run_rounds(settings: GenerateSettings, constitution: Constitution) -> int:
    """`--rounds`, else the constitution's `rounds`, else 1."""
    return settings.rounds if settings.rounds is not None else (constitution.rounds or 1)


def make_recipe(plan: Plan) -> Recipe:
    return recipe_for(plan.settings, plan.constitution, plan.rounds)


def recipe_for(settings: GenerateSettings, constitution: Constitution, rounds: int) -> Recipe:
    """What every conversation is asked with, from a run's settings (also `principles try`'s)."""
    feedback = Feedback(settings.feedback, settings.judge_principles, settings.judge_cot,
                        settings.min_preference) if settings.feedback else None
    return Recipe(constitution, SamplingSettings(settings.max_tokens,
                                                 settings.temperature, settings.top_p),
                  seed=settings.seed, rounds=rounds, samples=settings.samples,
                  feedback=feedback, check_retries=settings.check_retries)
