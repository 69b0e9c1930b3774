"""The options `generate` shares with the commands that run its flow on a few prompts
(`principles try`): the model, sampling, engine and check-retry flags, with one help text each."""

from __future__ import annotations

import click

from selfalign.generate.settings import GenerateSettings
from selfalign.option_groups import stacked

_D = GenerateSettings()


model_options = stacked([
    click.option("--model", default=None, help="Checkpoint folder or model id [default: embedded "
                 "SmolLM2-135M-Instruct]."),
    click.option("--backend", type=click.Choice(["vllm", "openai", "transformers"]),
                 default=_D.backend, show_default=True,
                 help="vllm: in-process engine; openai: OpenAI-compatible servers (--base-url); "
                      "transformers: plain generate, where vLLM cannot run."),
    click.option("--rounds", type=int, default=None,
                 help="Critique+revise rounds [default: the constitution's, else 1]."),
    click.option("--samples", type=int, default=_D.samples, show_default=True,
                 help="Independent first answers per prompt."),
    click.option("--max-tokens", type=int, default=_D.max_tokens, show_default=True,
                 help="Most tokens of one model turn (answer, critique or revision)."),
    click.option("--temperature", type=float, default=_D.temperature, show_default=True,
                 help="Sampling temperature of every turn; 0 is greedy."),
    click.option("--top-p", type=float, default=_D.top_p, show_default=True,
                 help="Nucleus sampling: keep the smallest set of tokens with this much "
                      "probability."),
    click.option("--seed", type=int, default=_D.seed, show_default=True,
                 help="Seeds principle draws and every request (with its prompt, sample, stage and "
                      "round), so a rerun or a resume samples the same."),
])

engine_options = stacked([
    click.option("--dtype", default=_D.dtype, show_default=True,
                 help="The engine's dtype: auto is the model's own (float32 on a CPU without "
                      "native bfloat16), or bfloat16, float16, float32."),
    click.option("--max-model-len", type=int, default=None,
                 help="The engine's context length [default: the model's, capped at 8192 on CPU]."),
    click.option("--tensor-parallel-size", type=int, default=_D.tensor_parallel_size,
                 show_default=True, help="GPUs one engine spreads a model over (vLLM)."),
    click.option("--data-parallel-size", type=int, default=_D.data_parallel_size,
                 show_default=True,
                 help="vLLM engine replicas, each of --tensor-parallel-size GPUs (8 GPUs: 8)."),
    click.option("--max-num-seqs", type=int, default=None,
                 help="Requests vLLM runs at once [default: vLLM's offline default]."),
    click.option("--gpu-memory-utilization", type=float, default=_D.gpu_memory_utilization,
                 show_default=True, help="Share of each GPU's memory vLLM may take (weights and "
                                       "KV cache)."),
    click.option("--cpu-kv-cache-gib", type=float, default=_D.cpu_kv_cache_gib, show_default=True,
                 help="KV cache size when vLLM runs on a CPU."),
    click.option("--enforce-eager/--no-enforce-eager", default=None,
                 help="Skip vLLM graph compilation [default: skip on CPU, compile on GPU]."),
    click.option("--base-url", multiple=True, metavar="URL",
                 help="OpenAI-compatible server, e.g. http://host:8000/v1 (repeatable: requests "
                      "are spread over all of them). Needs --backend openai."),
    click.option("--api-key-env", default=None, metavar="NAME",
                 help="Environment variable holding the servers' API key (never written "
                      "anywhere)."),
    click.option("--max-concurrency", type=int, default=_D.max_concurrency, show_default=True,
                 help="Requests in flight over all servers (openai backend)."),
    click.option("--request-timeout", type=float, default=_D.request_timeout, show_default=True,
                 help="Seconds before a server request is given up and retried."),
    click.option("--max-retries", type=int, default=_D.max_retries, show_default=True,
                 help="Retries per request on connection errors, 429 and 5xx, with backoff."),
])

check_retries_option = stacked([
    click.option("--check-retries", type=int, default=_D.check_retries, show_default=True,
                 help="A revision that fails one of its principle's or the constitution's checks "
                      "is asked again, with the failing checks' messages in the revision turn, at "
                      "most this many times; one that still fails goes to rejects.parquet as "
                      "check_failed. 0: no retries."),
])
