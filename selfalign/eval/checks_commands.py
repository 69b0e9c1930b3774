"""`selfalign checks score`: replies scored against their checks. It sits above the checks, the
constitution loader and the reader of finished runs (the checks may import neither), and
`cli.py` adds it to the `checks` group."""

from __future__ import annotations

from pathlib import Path

import click
from tqdm import tqdm

from selfalign.errors import UserError


@click.command("score")
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for scores.json (the four figures, per-kind rates) and "
                   "verdicts.parquet (one row per reply and check).")
@click.option("--principles", multiple=True, metavar="PATH",
              help="Principle file, folder or constitution manifest whose checks the replies are "
                   "held to: a reply naming its principle gets that principle's, any other all "
                   "of them (repeatable).")
@click.option("--ifeval-input", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="IFEval's input file (prompt, instruction_id_list, kwargs): each reply gets "
                   "the checks of its prompt, matched on the prompt's text.")
def score(file: Path, out: Path, principles: tuple[str, ...], ifeval_input: Path | None) -> None:
    """Score FILE's replies against their checks: IFEval's four figures, strict and loose.

    FILE is JSONL or parquet with `prompt` and `response` (optionally `principle`), or a run
    folder, whose first answers and revisions are scored.
    """
    from selfalign.checks import replies as read
    from selfalign.checks.report import score_table, write_scores
    from selfalign.checks.score import score_replies

    if bool(principles) == (ifeval_input is not None):
        raise UserError("give the checks either with --principles or with --ifeval-input "
                        "(one of the two)")
    found = _read_replies(file)
    if ifeval_input is not None:
        items, unmatched = read.with_ifeval_checks(found, read.read_ifeval_input(ifeval_input))
        for reply in unmatched[:5]:
            click.echo(f"warning: {reply.where}: its prompt is not in {ifeval_input}; left out "
                       f"({reply.prompt[:70]!r}...)", err=True)
        if len(unmatched) > 5:
            click.echo(f"warning: ... and {len(unmatched) - 5} more prompts not in "
                       f"{ifeval_input}", err=True)
    else:
        by_principle, shared = _principle_checks(principles)
        items, unmatched = read.with_principle_checks(found, by_principle, shared), []
    scored = list(score_replies(tqdm(items, desc="checking", unit="reply", leave=False)))
    scores = write_scores(out, scored, {
        "file": str(file), "ifeval_input": str(ifeval_input) if ifeval_input else None,
        "principles": list(principles),
        "not_in_ifeval_input": [reply.where for reply in unmatched]})
    click.echo(score_table(scores))
    click.echo(f"wrote {out}/scores.json and {out}/verdicts.parquet")


def _read_replies(file: Path):
    from selfalign.checks.replies import read_reply_file, replies_from_traces

    if file.is_dir():
        from selfalign.store.reader import open_finished_run

        run = open_finished_run(file)
        return list(replies_from_traces(run.rows("traces"), f"{file}/traces"))
    return read_reply_file(file)


def _principle_checks(paths: tuple[str, ...]):
    """Each principle's checks by name, and the checks the manifest gives every principle.
    (`checks` on principles and on the constitution are read where the loader provides them.)"""
    from selfalign.constitution.loader import load_constitution

    constitution = load_constitution(paths)
    by_principle = {p.name: tuple(getattr(p, "checks", ())) for p in constitution.principles}
    shared = tuple(getattr(constitution, "checks", ()))
    if not shared and not any(by_principle.values()):
        raise UserError(f"{', '.join(paths)}: no principle lists `checks:`; there is nothing to "
                        f"score against")
    return by_principle, shared
