"""The transformers fallback engine on the tiny random Llama: batching, rejects, reseeding."""

from selfalign.engine.base import SamplingSettings
from selfalign.engine.transformers_engine import TransformersEngine


def test_batched_generate_rejects_too_long_and_reseeds(tiny_model_dir):
    engine = TransformersEngine(str(tiny_model_dir), seed=0, max_model_len=256)
    conversations = [[{"role": "user", "content": "Say something kind."}],
                     [{"role": "user", "content": "word " * 400}],
                     [{"role": "user", "content": "Keep {0} %s </s> verbatim"}]]
    greedy = SamplingSettings(max_tokens=6, temperature=0)
    first = engine.chat(conversations, greedy, desc="generate")
    assert [c.error for c in first] == [None, "too_long", None]
    assert first[0].text.strip() and first[0].output_tokens == 6
    assert first[0].finish_reason == "length"
    assert first == engine.chat(conversations, greedy)  # greedy: the same again

    sampled = SamplingSettings(max_tokens=6, temperature=1.0, top_p=1.0)
    engine.reseed(11)
    a = engine.chat(conversations, sampled)
    engine.reseed(11)
    b = engine.chat(conversations, sampled)
    assert [c.text for c in a] == [c.text for c in b]
    assert engine.describe()["backend"] == "transformers"
