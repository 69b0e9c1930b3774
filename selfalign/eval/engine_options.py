"""The command-line options of how a model's engine runs, shared by `eval` and `eval judge`;
their defaults are those of `EngineFields`."""

from __future__ import annotations

from dataclasses import fields
import click

from selfalign.eval.settings import EngineFields
from selfalign.option_groups import stacked

_D = {f.name: f.default for f in fields(EngineFields)}


local_engine_options = stacked([
    click.option("--dtype", default=_D["dtype"], show_default=True,
                 help="Weights' dtype in vLLM (auto: the checkpoint's; float32 on most CPUs)."),
    click.option("--max-model-len", type=int, default=None,
                 help="Context length vLLM reserves for [default: the model's]."),
    click.option("--tensor-parallel-size", type=int, default=_D["tensor_parallel_size"],
                 show_default=True, help="GPUs one engine spreads its weights over."),
    click.option("--data-parallel-size", type=int, default=_D["data_parallel_size"],
                 show_default=True, help="Engine replicas, each of --tensor-parallel-size GPUs."),
    click.option("--gpu-memory-utilization", type=float, default=_D["gpu_memory_utilization"],
                 show_default=True, help="Share of GPU memory vLLM may take."),
    click.option("--cpu-kv-cache-gib", type=float, default=_D["cpu_kv_cache_gib"],
                 show_default=True, help="KV cache size when vLLM runs on a CPU."),
    click.option("--enforce-eager/--no-enforce-eager", default=None,
                 help="Skip vLLM graph compilation [default: skip on CPU, compile on GPU]."),
])

server_options = stacked([
    click.option("--api-key-env", default=_D["api_key_env"], show_default=True,
                 help="Environment variable holding the servers' API key."),
    click.option("--max-concurrency", type=int, default=_D["max_concurrency"], show_default=True,
                 help="Requests open at once per server (--backend openai)."),
    click.option("--request-timeout", type=float, default=_D["request_timeout"],
                 show_default=True, help="Seconds before a server request is given up."),
])
