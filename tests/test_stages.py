"""The conversations each stage sends, pinned turn by turn, on the scripted stand-in engine."""

from selfalign.constitution import load_constitution
from selfalign.engine.base import SamplingSettings
from selfalign.records import PromptRecord
from selfalign.generate.shards import Pipeline, Shard

from run_helpers import write_constitution
from scripted_engine import ScriptedEngine

EXEMPLAR_TURNS = [
    {"role": "user", "content": "EX-PROMPT"},
    {"role": "assistant", "content": "EX-RESPONSE"},
    {"role": "user", "content": "CRIT-A Did the answer break rule A?"},
    {"role": "assistant", "content": "EX-CRITIQUE"},
    {"role": "user", "content": "REV-A Rewrite it to follow rule A."},
    {"role": "assistant", "content": "EX-REVISION"},
]
SYS = {"role": "system", "content": "SYS"}


def run_pipeline(tmp_path, rounds=1, prompts=("What is 2+2?",), samples=1, **engine_kw):
    constitution = load_constitution([write_constitution(tmp_path, rounds=rounds)])
    engine = ScriptedEngine(**engine_kw)
    pipeline = Pipeline(engine, constitution, SamplingSettings(), seed=7, rounds=rounds,
                        samples=samples)
    records = [PromptRecord(id=f"id{i}", prompt=p) for i, p in enumerate(prompts)]
    return pipeline.run(Shard(3, records)), engine, constitution


def test_one_round_sends_exact_conversations(tmp_path):
    samples, engine, constitution = run_pipeline(tmp_path)
    drawn = constitution.draw(7, "id0", 1)
    crit = {"role": "user", "content": drawn.critique_request}
    rev = {"role": "user", "content": drawn.revision_request}
    user = {"role": "user", "content": "What is 2+2?"}
    first = {"role": "assistant", "content": "first answer to: What is 2+2?"}
    critique_text = {"role": "assistant", "content": "critique of: first answer to: What is 2+2?"}
    assert [desc for desc, _ in engine.calls] == ["generate", "critique r1", "revise r1"]
    # The first answer sees no exemplars; critique and revision put the shared prefix first.
    assert engine.calls[0][1] == [[SYS, user]]
    assert engine.calls[1][1] == [[SYS, *EXEMPLAR_TURNS, user, first, crit]]
    assert engine.calls[2][1] == [[SYS, *EXEMPLAR_TURNS, user, first, crit, critique_text, rev]]
    sample = samples[0]
    assert sample.initial == "first answer to: What is 2+2?"
    assert sample.rounds[0].principle == drawn.name
    assert sample.rounds[0].raw_revision.startswith("Sure, here is a revised response:")
    assert sample.final == "revised(first answer to: What is 2+2?)"


def test_second_round_continues_the_conversation_with_a_fresh_draw(tmp_path):
    samples, engine, constitution = run_pipeline(tmp_path, rounds=2)
    assert [d for d, _ in engine.calls] == ["generate", "critique r1", "revise r1",
                                            "critique r2", "revise r2"]
    round2 = engine.calls[3][1][0]
    assert round2[-1]["content"] == constitution.draw(7, "id0", 2).critique_request
    assert round2[-2] == {"role": "assistant",
                          "content": "revised(first answer to: What is 2+2?)"}
    assert samples[0].final == "revised(revised(first answer to: What is 2+2?))"
    assert [r.principle for r in samples[0].rounds] == [constitution.draw(7, "id0", r).name
                                                        for r in (1, 2)]


def test_each_stage_is_one_batched_call_and_samples_multiply(tmp_path):
    samples, engine, _ = run_pipeline(tmp_path, prompts=("a", "b", "c"), samples=2)
    assert [len(convs) for _, convs in engine.calls] == [6, 6, 6]
    assert [(s.record.id, s.index) for s in samples] == [
        ("id0", 0), ("id0", 1), ("id1", 0), ("id1", 1), ("id2", 0), ("id2", 1)]


def test_a_failed_request_skips_later_stages_for_that_sample_only(tmp_path):
    samples, engine, _ = run_pipeline(tmp_path, prompts=("ok", "TOO-LONG here"))
    assert [len(convs) for _, convs in engine.calls] == [2, 1, 1]
    assert samples[1].failure == "too_long" and samples[1].failed_stage == "generate"
    assert samples[0].alive and samples[0].final == "revised(first answer to: ok)"


def test_engine_is_reseeded_per_shard_and_stage(tmp_path):
    _, first, _ = run_pipeline(tmp_path / "a")
    _, second, _ = run_pipeline(tmp_path / "b")
    assert first.seeds == second.seeds
    assert len(set(first.seeds)) == 3  # generate, critique r1, revise r1 differ


def test_template_like_text_reaches_the_engine_verbatim(tmp_path):
    text = "Fill {{ name }} and {0} and %s then </s> <|im_end|>"
    samples, engine, _ = run_pipeline(tmp_path, prompts=(text,))
    assert engine.calls[0][1][0][-1]["content"] == text
    assert samples[0].final == f"revised(first answer to: {text})"
