"""The safety figures in report.md and the command's summary: declined and answered shares per
model, RBR's F1, and by prompt type the refusal share per model (XSTest's tables), each said
beside the caveat that "declined" is a proxy for "not unsafe"."""

from __future__ import annotations

from selfalign.eval.checks import pass_rate
from selfalign.eval.checks_report import rate_text
from selfalign.eval.report_format import cell, md_table
from selfalign.eval.results import MODEL_ROLES

CAVEAT = ("**\"Declined\" is a proxy for \"not unsafe\".** Whether a reply declined is decided by "
          "the refusal detector (a refusal near the start of the reply); a reply that does not "
          "refuse may still be harmless, e.g. a safe redirection or a warning, so the declined "
          "share under-counts \"not unsafe\". No judge read these replies.")
_ROWS = (("should_refuse", "should-refuse prompts declined (not unsafe, proxy)"),
         ("should_comply", "should-comply prompts answered (not over-refusing)"))
_EXPECTED = {"refuse": "decline", "comply": "answer", "mixed": "both"}


def safety_section(ev: dict) -> str:
    block = ev.get("safety")
    if not block:
        return ""
    lines = ["## Safety (no judge)", "",
             f"Over the {block['prompts']} prompts both models answered whose expected behaviour "
             f"is known (a `behavior`, `benign` or XSTest `label` column, or a harmful "
             f"`category`): the share of those that should be refused that each model declined, "
             f"and of those that should be answered that it answered. " + _method(block), "",
             CAVEAT, "", figures_table(block)]
    if block.get("by_type"):
        lines += ["", "By prompt type:", "", type_table(block["by_type"])]
    return "\n".join(lines)


def xstest_section(ev: dict) -> str:
    block = ev.get("xstest")
    if not block:
        return ""
    return "\n".join([
        "## XSTest", "",
        f"Both models answered the prompts of `{block['file']}` ({block['source']}): safe prompts "
        f"that only sound risky, which a model should answer, and unsafe contrast prompts "
        f"(`contrast_*`), which it should decline; {block['prompts']} were answered by both. "
        + _method(block), "", CAVEAT, "", figures_table(block), "",
        "By prompt type, as the XSTest paper's tables give it: the share of replies that "
        "refused. The detector does not tell a full refusal from a partial one (a refusal "
        "followed by an answer), so both count as refused.", "",
        type_table(block["by_type"])])


def _method(block: dict) -> str:
    left = [f"{block[key]} {what}" for key, what in (
        ("unpaired", "left out because one model gave no answer"),
        ("unmarked", "left out because they do not say what they expect")) if block.get(key)]
    return ("McNemar's exact test compares the models on the same prompts (those where just one "
            "did what was expected); F1 is the harmonic mean of the two shares, the figure "
            "OpenAI's rule-based-rewards paper reports for \"not unsafe\" and \"not "
            "over-refusing\"." + (f" Prompts {'; '.join(left)}." if left else ""))


def figures_table(block: dict) -> str:
    rows = []
    for key, label in _ROWS:
        f = block[key]
        if f is not None:
            rows.append([label, rate_text(f["baseline"]), rate_text(f["candidate"]),
                         f"{100 * f['difference']:+.1f}",
                         f"{f['candidate_only']} / {f['baseline_only']}", f"{f['mcnemar_p']:.3g}"])
    f1 = block["f1"]
    if f1 is not None:
        rows.append(["F1 of the two (RBR)", f"{f1['baseline']:.3f}", f"{f1['candidate']:.3f}",
                     f"{100 * f1['difference']:+.1f}", "", ""])
    return md_table(["figure", "baseline", "candidate", "difference (points)",
                     "only candidate / only baseline did it", "McNemar p"], rows)


def type_table(by_type: dict) -> str:
    rows = []
    for name, group in by_type.items():
        refused = {role: _refused(group, role) for role in MODEL_ROLES}
        p_values = [group[key]["mcnemar_p"] for key, _ in _ROWS if group[key] is not None]
        rows.append([cell(name), _EXPECTED[group["behavior"]], refused["baseline"]["total"],
                     *(rate_text(refused[role]) for role in ("baseline", "candidate")),
                     f"{100 * (refused['candidate']['rate'] - refused['baseline']['rate']):+.1f}",
                     " / ".join(f"{p:.3g}" for p in p_values)])
    return md_table(["prompt type", "should", "prompts", "baseline refused", "candidate refused",
                     "difference (points)", "McNemar p"], rows)


def _refused(group: dict, role: str) -> dict:
    """The refusal share of one model over a type: declined should-refuse prompts plus the
    should-comply prompts it did not answer."""
    counts = [(f[role]["passed"], f[role]["total"]) if key == "should_refuse"
              else (f[role]["total"] - f[role]["passed"], f[role]["total"])
              for key, _ in _ROWS if (f := group[key]) is not None]
    return pass_rate(sum(n for n, _ in counts), sum(t for _, t in counts))


def safety_lines(ev: dict) -> list[str]:
    """One line per safety block, for the command's summary."""
    lines = []
    for key, name in (("safety", "safety"), ("xstest", "XSTest")):
        block = ev.get(key)
        if not block:
            continue
        parts = [f"{label.split(' (')[0]}: candidate {rate_text(block[goal]['candidate'])}, "
                 f"baseline {rate_text(block[goal]['baseline'])}, McNemar p = "
                 f"{block[goal]['mcnemar_p']:.3g}"
                 for goal, label in _ROWS if block[goal] is not None]
        if block["f1"] is not None:
            parts.append(f"F1 candidate {block['f1']['candidate']:.3f}, baseline "
                         f"{block['f1']['baseline']:.3f}")
        lines.append(f"{name} (declined is a proxy for not unsafe): " + "; ".join(parts))
    return lines
