"""Small builders shared by the stage and runner tests: a two-principle constitution on disk."""

from __future__ import annotations

import json
from pathlib import Path

from selfalign.generate.plan import plan_run

from selfalign.generate.run import run_generate
from selfalign.generate.settings import GenerateSettings

from scripted_engine import ScriptedEngine

PRINCIPLE = """name: {name}
tags: [harmless]
weight: {weight}
critique_request: CRIT-{tag} Did the answer break rule {tag}?
revision_request: REV-{tag} Rewrite it to follow rule {tag}.
comparison: Which answer follows rule {tag} better?
"""
EXEMPLAR = """name: demo-exemplar
principle: alpha
prompt: EX-PROMPT
response: EX-RESPONSE
critique: EX-CRITIQUE
revision: EX-REVISION
"""
MANIFEST = """kind: constitution
name: test
principles: [principles/*.yaml]
exemplars: [exemplar.yaml]
system_prompt: SYS
rounds: {rounds}
"""


def write_constitution(root: Path, rounds: int = 1) -> Path:
    (root / "principles").mkdir(parents=True, exist_ok=True)
    for name, tag, weight in (("alpha", "A", 1), ("beta", "B", 1)):
        (root / "principles" / f"{name}.yaml").write_text(
            PRINCIPLE.format(name=name, tag=tag, weight=weight))
    (root / "exemplar.yaml").write_text(EXEMPLAR)
    manifest = root / "constitution.yaml"
    manifest.write_text(MANIFEST.format(rounds=rounds))
    return manifest


def write_prompts(path: Path, rows: list) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_scripted(manifest: Path, prompts: Path, out: Path, engine: ScriptedEngine | None = None,
                 log=lambda message: None, **overrides):
    """A real run of the runner with the scripted stand-in engine in place of vLLM."""
    engine = engine or ScriptedEngine()
    settings = GenerateSettings(principles=[str(manifest)], prompts=[str(prompts)], out=str(out),
                                **overrides)
    plan = plan_run(settings, resolve_model=lambda model: "scripted-model")
    manifest_out = run_generate(plan, lambda s, m: engine, log=log)
    return manifest_out, engine
