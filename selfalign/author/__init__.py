"""The principle author's loop: `selfalign principles try` and `principles new`.

A handful of prompts through `generate`'s own flow (generate/flow.py), shown for a person:

- `prompts`: the prompts a trial uses (`--prompt`, `--prompts`, or the built-in sample).
- `trial`: one constitution over those prompts on an engine already built; per-principle figures.
- `render`: a trial as 80-column text (revisions as word diffs), coloured on a terminal, or JSON.
- `versions`, `compare`: the other version of a file for `--against` (a file, or git's
  `REV:path`), and where the two versions' final texts differ.
- `watch`: the files to poll for saves; `session`: the engine built once, a trial, and one more
  per save until Ctrl-C.
- `starter`: the commented file `principles new` writes.
"""
