"""`selfalign prompts ...`: thin click commands over selfalign.prompts.prepare."""

from __future__ import annotations

import click

from selfalign.prompts.behavior import BEHAVIORS
from selfalign.prompts.conversations import CONVERSATION_MODES
from selfalign.prompts.dedup import DEFAULT_PREFIX_CHARS
from selfalign.prompts.pii import PII_MODES
from selfalign.prompts.sources import PROMPT_FORMATS
from selfalign.prompts.split import DEFAULT_SPLITS

# Help texts shared by `prompts prepare` and `generate`.
PROMPT_FORMAT_HELP = ("How a row holds its prompt: auto decides by the row's keys (text field, messages, "
                      "conversations, turns, chosen); the others force one shape.")
PROMPT_TEMPLATE_HELP = ("Join several columns into the prompt, e.g. \"{ContextString}\\n\\n{Behavior}\"; "
                        "names columns only, cell text is pasted verbatim.")
CONVERSATION_HELP = ("For multi-turn prompts: last-user keeps the whole conversation up to its last user "
                     "turn (a reply after it goes to metadata as `reply`); first-user keeps only the "
                     "first user turn.")
BEHAVIOR_HELP = ("What every prompt of the input expects, for rows that do not say it themselves (a "
                 "`behavior`, `benign` or XSTest `label` column): refuse (decline it) or comply "
                 "(answer it). Kept as the prompt's `behavior`, which `when:` on a check reads.")
HARMFUL_CATEGORIES_HELP = ("Comma-separated `category` values whose prompts should be declined "
                           "(behavior refuse); a row with any other category should be answered "
                           "(comply). Without it `category` is not read.")


@click.group()
def prompts() -> None:
    """Read and prepare prompt streams."""


@prompts.command()
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder to write <split>.parquet, rejects.parquet and report.json into.")
@click.option("--text-field", default="prompt", show_default=True, help="Column holding the prompt text (or a message list, or with --prompt-format hh a transcript).")
@click.option("--id-field", default="id", show_default=True, help="Column holding the prompt id; rows without one get a hash of their text.")
@click.option("--user-field", default="user_id", show_default=True, help="Column holding the user id, used by the per-user cap and the split.")
@click.option("--max-per-user", default=200, show_default=True, type=int, help="Keep at most this many prompts per user (first ones win); 0 for no cap.")
@click.option("--splits", default=DEFAULT_SPLITS, show_default=True, help="Split names and the share of users each gets, by a stable hash of the user id.")
@click.option("--pii", type=click.Choice(PII_MODES), default="drop", show_default=True, help="drop rows with personal data, or redact it to e.g. [EMAIL].")
@click.option("--languages", default=None, help="Comma-separated ISO 639-1 codes to keep (e.g. en,fr); default keeps all.")
@click.option("--prefix-chars", default=DEFAULT_PREFIX_CHARS, show_default=True, type=int, help="Prompts whose first N normalised characters match a kept one are near duplicates; 0 turns this off.")
@click.option("--prompt-format", type=click.Choice(PROMPT_FORMATS), default="auto", show_default=True, help=PROMPT_FORMAT_HELP)
@click.option("--prompt-template", default=None, help=PROMPT_TEMPLATE_HELP)
@click.option("--conversation", type=click.Choice(CONVERSATION_MODES), default="last-user", show_default=True, help=CONVERSATION_HELP)
@click.option("--behavior", type=click.Choice(BEHAVIORS), default=None, help=BEHAVIOR_HELP)
@click.option("--harmful-categories", default=None, metavar="A,B", help=HARMFUL_CATEGORIES_HELP)
@click.option("--decontaminate", "tests", multiple=True, type=click.Path(exists=True), metavar="FILE", help="A test set (any prompt source, e.g. XSTest's CSV, IFEval's JSONL, a prepared folder): drop training prompts whose shared 8-word runs cover more than half of one of its prompts, or all of their own. Repeat for several.")
def prepare(inputs, out, text_field, id_field, user_field, max_per_user, splits, pii, languages, prefix_chars,
            prompt_format, prompt_template, conversation, behavior, harmful_categories, tests) -> None:
    """Normalise, deduplicate, filter and split prompts from INPUT... (files, folders, '-' for stdin)."""
    from selfalign.prompts.behavior import behavior_rule
    from selfalign.prompts.prepare import PrepareSettings, prepare as run_prepare
    from selfalign.prompts.sources import FieldMap
    from selfalign.prompts.split import SplitPlan

    settings = PrepareSettings(
        fields=FieldMap(text=text_field, id=id_field, user=user_field, prompt_format=prompt_format,
                        prompt_template=prompt_template, conversation=conversation,
                        behavior=behavior_rule(behavior, harmful_categories)),
        max_per_user=max_per_user,
        splits=SplitPlan.parse(splits),
        pii=pii,
        languages=frozenset(c.strip() for c in languages.split(",") if c.strip()) if languages else None,
        prefix_chars=prefix_chars,
        decontaminate=tuple(tests),
    )
    report = run_prepare(list(inputs), out, settings)
    _echo_report(report, out)


def _echo_report(report: dict, out: str) -> None:
    click.echo(f"{report['rows_in']} rows in, {report['rows_out']} kept, {report['rows_rejected']} rejected -> {out}")
    for name, count in report["by_split"].items():
        click.echo(f"  {name}: {count}")
    for reason, count in report["by_reason"].items():
        click.echo(f"  dropped {reason}: {count}")
    decontamination = report.get("decontamination")
    if decontamination:
        click.echo(f"  {decontamination['dropped']} contaminated, matching "
                   f"{len(decontamination['matched'])} of {decontamination['test_rows']} test "
                   f"prompts (each in report.json)")
