"""Progress bars shared by the engines and the runner."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


def stage_bar(*args, desc: str = "", **kwargs) -> tqdm:
    """A tqdm bar for one stage call; vLLM passes its own total and updates it per request."""
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("file", sys.stderr)
    kwargs["desc"] = desc
    return tqdm(*args, **kwargs)
