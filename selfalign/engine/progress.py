"""Progress bars shared by the engines and the runner."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


def stage_bar(*args, stage: str = "", **kwargs) -> tqdm:
    """A tqdm bar labelled with the stage (generate, critique r1, ...).

    vLLM calls this for its own bars with its own `desc` ("Processed prompts" with totals and
    tokens/s, "Rendering conversations"); the stage name replaces or prefixes that label.
    """
    label = kwargs.get("desc", "")
    if stage:
        own = not label or label.startswith("Processed")
        kwargs["desc"] = stage if own else f"{stage} ({label.lower()})"
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("file", sys.stderr)
    return tqdm(*args, **kwargs)
