"""How the vLLM engine turns a request into SamplingParams and picks its CPU dtype, checked
without starting an engine."""

import io

import pytest

from selfalign.engine import vllm_engine
from selfalign.engine.base import Request, SamplingSettings
from selfalign.engine.default_model import default_model_path
from selfalign.engine.vllm_engine import VLLMEngine
from selfalign.errors import UserError

MESSAGES = [{"role": "user", "content": "a"}]


def test_sampled_requests_carry_their_own_seed_and_greedy_ones_none():
    engine = object.__new__(VLLMEngine)  # no engine: only the parameter building is under test
    sampled = engine._params(Request(MESSAGES, SamplingSettings(max_tokens=8, temperature=0.7),
                                     seed=123))
    greedy = engine._params(Request(MESSAGES, SamplingSettings(temperature=0), seed=123))
    unseeded = engine._params(Request(MESSAGES, SamplingSettings(temperature=0.7)))
    assert (sampled.seed, sampled.max_tokens, sampled.temperature) == (123, 8, 0.7)
    assert greedy.seed is None and unseeded.seed is None


def engine_with_tokenizer(folder) -> VLLMEngine:
    """The engine's request building with a real tokenizer and no engine behind it."""
    from transformers import AutoTokenizer

    engine = object.__new__(VLLMEngine)
    engine.model, engine.tokenizer = str(folder), AutoTokenizer.from_pretrained(folder)
    engine._option_ids = {}
    return engine


def test_options_ask_for_exactly_the_option_tokens():
    engine = engine_with_tokenizer(default_model_path())
    params = engine._params(Request(MESSAGES, SamplingSettings(), options=("A", "B")))
    assert params.max_tokens == 1 and params.temperature == 0
    # SmolLM2's vocabulary holds "A" and "B" as tokens 49 and 50 (its tokenizer.json).
    assert params.logprob_token_ids == [49, 50]
    assert engine.tokenizer.convert_ids_to_tokens([49, 50]) == ["A", "B"]
    swapped = engine._params(Request(MESSAGES, SamplingSettings(), options=("B", "A")))
    assert swapped.logprob_token_ids == [50, 49]


def test_a_tokenizer_that_splits_an_option_letter_is_refused(letter_splitting_model_dir):
    engine = engine_with_tokenizer(letter_splitting_model_dir)
    with pytest.raises(UserError) as refused:
        engine._params(Request(MESSAGES, SamplingSettings(), options=("A", "B")))
    assert str(refused.value) == (
        f"judge model {letter_splitting_model_dir}: its tokenizer splits the option letter 'A' "
        f"into 2 tokens [1, 2]; the judge reads one token per option. Choose another "
        f"--judge-model")


def fake_cpuinfo(monkeypatch, flags: str) -> None:
    text = f"processor\t: 0\nflags\t\t: fpu sse2 avx2 {flags}\n"
    monkeypatch.setattr(vllm_engine, "open", lambda *a, **k: io.StringIO(text), raising=False)


@pytest.mark.parametrize("flags, native", [("avx512f", False), ("avx512f avx512_bf16", True),
                                           ("amx_bf16 amx_tile", True), ("", False)])
def test_native_bf16_is_read_from_the_cpu_flags(monkeypatch, flags, native):
    fake_cpuinfo(monkeypatch, flags)
    assert vllm_engine.cpu_has_native_bf16() is native


@pytest.mark.parametrize("native, asked, eager, expected", [
    (False, "auto", None, ("float32", True)),  # bf16 without hardware support is ~4x slower
    (True, "auto", None, ("auto", True)),  # the model's own dtype
    (False, "bfloat16", None, ("bfloat16", True)),  # what the user asked for wins
    (False, "auto", False, ("float32", False)),
])
def test_the_cpu_engine_chooses_its_dtype(monkeypatch, native, asked, eager, expected):
    fake_cpuinfo(monkeypatch, "avx512_bf16" if native else "avx2")
    assert vllm_engine._cpu_defaults(asked, eager) == expected
