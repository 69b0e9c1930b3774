"""`generate --ray`: the run's shards on engine-owning Ray actors. Only this package imports Ray.

- `cluster`: connect (or start one here), check it can hold a worker, size the workers.
- `worker`: one engine and the flow over the shards it is sent; plain Python, Ray-free.
- `driver`: the executor that hands shards to workers and records what they return.
"""
