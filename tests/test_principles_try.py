"""`principles try` and `principles new` on the scripted stand-in engine: the rendering (word
diff, verdicts, 80 columns, no colour codes when piped), --json, --against, the session's reuse
of answers and its watch loop."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from selfalign.author.prompts import SAMPLE, trial_prompts
from selfalign.author.render import Page, render_trial, wants_colour
from selfalign.author.session import Session, run_session
from selfalign.author.trial import Remembering, run_trial
from selfalign.cli import main
from selfalign.constitution import check_paths, load_constitution
from selfalign.generate.settings import GenerateSettings
from selfalign.stages.sample import CheckVerdict

from scripted_engine import ScriptedEngine

# The stand-in answers "first answer to: <prompt>" and revises to "revised(<answer>)"; a retry
# is answered "reply to: <the retry turn>".
PRINCIPLE = """\
name: starts
critique_request: Say what is wrong.
revision_request: {revision}
checks:
  - kind: regex
    pattern: "{pattern}"
"""


def write_principle(path: Path, pattern: str = "^revised", revision: str = "Fix it.") -> Path:
    path.write_text(PRINCIPLE.format(pattern=pattern, revision=revision))
    return path


@pytest.fixture
def scripted(monkeypatch) -> ScriptedEngine:
    """The CLI's engine is the stand-in, built the way generate builds its own."""
    engine = ScriptedEngine()
    monkeypatch.setattr("selfalign.engine.make_engine", lambda settings, model: engine)
    monkeypatch.setattr("selfalign.engine.model_resolver",
                        lambda settings: lambda model: "scripted-stand-in")
    return engine


def run_cli(*args: str):
    return CliRunner().invoke(main, ["principles", "try", *args], catch_exceptions=False)


# -- the page -----------------------------------------------------------------------------------

def test_a_revision_is_shown_as_a_word_diff_with_plain_markers_when_piped():
    assert Page(colour=False).diff("the cat sat", "the dog sat  down") == [
        "    the [-cat-] {+dog+} sat {+down+}"]
    # a reflowed text with the same words shows no change
    assert Page(colour=False).diff("one two\nthree", "one two three") == ["    one two three"]


def test_on_a_terminal_removed_words_are_red_and_added_ones_green_without_markers():
    line, = Page(colour=True).diff("the cat sat", "the dog sat")
    assert line == "    the \x1b[31;9mcat\x1b[0m \x1b[32mdog\x1b[0m sat"


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert wants_colour(Tty()) and not wants_colour(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not wants_colour(Tty())


def test_a_verdict_line_names_the_check_and_wraps_its_message_under_itself():
    failed = CheckVerdict(1, 0, "brief/length_constraints:number_words", False,
                          "Your reply has 57 words; it must have fewer than 40.")
    assert Page().verdict(failed) == [
        "  FAIL brief/length_constraints:number_words: Your reply has 57 words; it must",
        "       have fewer than 40."]
    passed = CheckVerdict(1, 0, "brief/regex", True, "matches.")
    assert Page().verdict(passed) == ["  pass brief/regex: matches."]
    assert Page(colour=True).verdict(passed) == ["  \x1b[32mpass\x1b[0m brief/regex: matches."]


def test_text_wraps_at_80_columns_and_a_longer_word_gets_a_line_of_its_own():
    url = "https://example.com/" + "x" * 90
    lines = Page().text("word " * 30 + url + " end")
    assert [len(line) for line in lines] == [78, 78, 4 + len(url), 7]  # 15 words of 4 a line
    assert lines[2] == "    " + url
    # a model's own line breaks and indents stay, blank runs become one blank line
    assert Page().text("def f():\n    return 1\n\n\nend") == [
        "    def f():", "        return 1", "", "    end"]


# -- the command, piped -------------------------------------------------------------------------

def test_the_default_is_four_of_the_built_in_prompts_harmful_and_harmless():
    records = trial_prompts([], [], None)
    assert [r.id for r in records] == ["try-kill-process", "try-pipe-bomb", "try-lentil-soup",
                                       "try-phishing"]
    categories = [json.loads(line)["category"] for line in SAMPLE.read_text().splitlines()]
    assert {"harmful", "harmless", "harmless, sounds risky"} <= set(categories)
    assert [r.prompt for r in trial_prompts(["Hi there"], [], None)] == ["Hi there"]
    assert len(trial_prompts(["Hi"], [], 6)) == 1  # --prompt alone: no sample
    assert [r.id for r in trial_prompts(["Hi"], [str(SAMPLE)], 3)][1:] == [
        "try-kill-process", "try-pipe-bomb"]  # --prompt first, then the file's up to 3


def test_piped_output_has_no_colour_codes_fits_80_columns_and_sums_up_the_principle(
        scripted, tmp_path):
    principle = write_principle(tmp_path / "starts.yaml")
    result = run_cli(str(principle), "--check-retries", "0")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "\x1b[" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    prompt = "How do I kill a Python process that has stopped responding?"
    words = len(prompt.split()) + 3
    assert f"""\
== 1/4 try-kill-process ========================================================
prompt   How do I kill a Python process that has stopped responding?
answer   {words} words
    first answer to: How do I kill a Python process that has stopped responding?
  FAIL starts/regex:""" in out
    assert ("    [-first-] {+revised(first+} answer to: How do I kill a Python process "
            "that\n    has stopped [-responding?-] {+responding?)+}\n  pass starts/regex:") in out
    # words 14, 12, 14, 22 -> the same counts after (one word replaced by one)
    assert ("starts: 4 rounds, checks 0/4 -> 4/4 passed, words 16 -> 16, 0 retries\n"
            "4 of 4 final texts pass every check (100%); ") in out


def test_json_gives_every_turn_diff_verdict_and_figure(scripted, tmp_path):
    principle = write_principle(tmp_path / "starts.yaml", pattern="^reply to")
    result = run_cli(str(principle), "--json", "--prompt", "Name a colour.")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    sample, = data["prompts"][0]["samples"]
    assert sample["answer"] == "first answer to: Name a colour."
    assert sample["verdicts"][0]["check"] == "starts/regex"
    assert sample["verdicts"][0]["passed"] is False
    round_, = sample["rounds"]
    assert round_["critique"] == "critique of: first answer to: Name a colour."
    # the revision failed the check and was asked again once (--check-retries 1, generate's)
    assert round_["retries"][0]["replaced"] == "revised(first answer to: Name a colour.)"
    assert round_["revision"].startswith("reply to: Fix it.\n\n")
    assert [v["passed"] for v in round_["verdicts"]] == [True]
    assert "".join(t for op, t in round_["diff"] if op != "-") == round_["revision"]
    figures, = data["principles"]
    assert (figures["rounds"], figures["passed_before"], figures["passed_after"],
            figures["retries"]) == (1, 0, 1, 1)
    assert data["pass_rate"] == {"passed": 1, "finished": 1}


def test_against_another_file_shows_where_the_versions_differ_and_both_pass_rates(
        scripted, tmp_path):
    new = write_principle(tmp_path / "new.yaml", pattern="^revised")
    old = write_principle(tmp_path / "old.yaml", pattern="^nothing")
    result = run_cli(str(new), "--against", str(old), "--check-retries", "0", "--limit", "2")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "  old FAIL starts/regex:" in out and "  new pass starts/regex:" in out
    assert out.rstrip().endswith(
        "2 of 2 differ; final texts passing every check: old 0/2 -> new 2/2")


def test_against_head_reads_the_file_as_last_committed(scripted, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q"], check=True)
    write_principle(tmp_path / "p.yaml", pattern="^nothing")
    subprocess.run([*git, "add", "p.yaml"], check=True)
    subprocess.run([*git, "commit", "-qm", "old"], check=True)
    write_principle(tmp_path / "p.yaml", pattern="^revised")
    result = run_cli("p.yaml", "--against", "HEAD", "--check-retries", "0", "--limit", "1")
    assert result.exit_code == 0, result.output
    assert "old: HEAD:p.yaml\nnew: p.yaml\n" in result.output
    assert "old 0/1 -> new 1/1" in result.output
    assert not list(tmp_path.glob(".p.*"))  # the old text's temporary copy is gone
    bad = CliRunner().invoke(main, ["principles", "try", "p.yaml", "--against", "nope"])
    assert bad.exit_code == 2
    assert "--against nope: neither a file nor a git revision that has p.yaml" in bad.output


def test_a_bad_principle_stops_before_any_engine_with_file_line_and_field(scripted, tmp_path):
    broken = tmp_path / "b.yaml"
    broken.write_text("name: b\ncritique_request: x\nrevision_requets: y\n")
    result = CliRunner().invoke(main, ["principles", "try", str(broken)])
    assert result.exit_code == 2
    assert "b.yaml:3: revision_requets: unknown key" in result.output
    assert scripted.count == 0


# -- the session --------------------------------------------------------------------------------

def test_a_second_trial_asks_the_engine_only_what_changed(tmp_path):
    engine = ScriptedEngine()
    ask = Remembering(engine.complete)
    settings = GenerateSettings(check_retries=0)
    records = trial_prompts([], [], None)

    async def trials():
        path = write_principle(tmp_path / "p.yaml")
        first = await run_trial("p", load_constitution([path]), settings, records, ask)
        again = await run_trial("p", load_constitution([path]), settings, records, ask)
        write_principle(path, revision="Fix it, briefly.")
        changed = await run_trial("p", load_constitution([path]), settings, records, ask)
        return first, again, changed

    first, again, changed = asyncio.run(trials())
    assert (first.requests, first.reused) == (12, 0)
    assert (again.requests, again.reused) == (12, 12)
    assert (changed.requests, changed.reused) == (12, 8)  # only the 4 revisions are new
    assert engine.count == 16
    def shown(trial) -> list[str]:  # up to the summary, whose time and reuse differ
        lines = render_trial(trial, Page())
        return lines[:lines.index("starts: 4 rounds, checks 0/4 -> 4/4 passed, words 16 -> 16, "
                                  "0 retries")]

    assert shown(again) == shown(first)


def test_watch_tries_each_save_and_waits_out_a_broken_one(tmp_path):
    path = write_principle(tmp_path / "p.yaml")
    out, err = io.StringIO(), io.StringIO()
    settings = GenerateSettings(check_retries=0)
    session = Session([path], settings, trial_prompts(["Hi"], [], None), Page(), out, err)

    async def author() -> int:
        task = asyncio.create_task(run_session(session, load_constitution([path]),
                                               ScriptedEngine, watch=True))
        await until(lambda: out.getvalue().count("watching 1 file") == 1)
        await asyncio.sleep(0.05)  # a modification time of its own
        path.write_text("name: starts\ncritique_request: x\nrevision_requets: y\n")
        await until(lambda: out.getvalue().count("watching 1 file") == 2)
        write_principle(path, pattern="^nothing")
        await until(lambda: out.getvalue().count("watching 1 file") == 3)
        task.cancel()
        return await task

    assert asyncio.run(author()) == 0  # Ctrl-C in --watch is the way out
    text = out.getvalue()
    assert "p.yaml:3: revision_requets: unknown key `revision_requets`" in text
    assert text.count("starts: 1 round,") == 2  # the first trial and the one after the fix
    assert "0 of 1 final texts pass every check" in text  # the fixed file's new check
    assert "after the save" in text
    assert err.getvalue().endswith("stopped\n")


def test_watch_can_start_from_a_broken_file_and_tries_it_once_fixed(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("name: starts\n")
    out, err = io.StringIO(), io.StringIO()
    session = Session([path], GenerateSettings(), trial_prompts(["Hi"], [], None), Page(), out,
                      err)
    engine = ScriptedEngine()

    async def author() -> int:
        task = asyncio.create_task(run_session(session, None, lambda: engine, watch=True))
        await until(lambda: "watching 1 file" in out.getvalue())
        assert engine.count == 0  # nothing valid to try yet
        await asyncio.sleep(0.05)
        write_principle(path)
        await until(lambda: out.getvalue().count("watching 1 file") == 2)
        task.cancel()
        return await task

    assert asyncio.run(author()) == 0
    assert "1 of 1 final texts pass every check" in out.getvalue()


async def until(condition, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


# -- principles new -----------------------------------------------------------------------------

def test_new_writes_a_commented_file_that_validates_with_the_schema_line(tmp_path):
    path = tmp_path / "be-kind.yaml"
    result = CliRunner().invoke(main, ["principles", "new", "be-kind", "--out", str(path),
                                       "--checks", "length_constraints:number_words",
                                       "--checks", "regex", "--no-try"])
    assert result.exit_code == 0, result.output
    assert f"selfalign principles try {path} --watch" in result.output
    text = path.read_text()
    schema = text.splitlines()[0].removeprefix("# yaml-language-server: $schema=")
    assert schema != text.splitlines()[0] and Path(schema).is_file()
    constitution, problems = check_paths([path])
    assert problems == []
    principle, = constitution.principles
    assert principle.name == "be-kind"
    assert [c.kind for c in principle.checks] == ["length_constraints:number_words", "regex"]


def test_new_in_this_repository_points_at_the_schema_as_the_shipped_principles_do():
    from selfalign.author.starter import starter_text

    repo = Path(__file__).resolve().parent.parent
    shipped = (repo / "principles" / "checked" / "brief.yaml").read_text().splitlines()[0]
    ours = starter_text("x", [], repo / "principles" / "checked" / "x.yaml").splitlines()[0]
    assert ours == shipped


def test_new_refuses_a_bad_name_an_unknown_kind_and_an_existing_file(tmp_path):
    def new(*args):
        return CliRunner().invoke(main, ["principles", "new", "--no-try", *args])

    assert "kebab-case" in new("Be_Kind", "--out", str(tmp_path / "a.yaml")).output
    assert "Unknown check kind 'lenght'" in new("a", "--checks", "lenght",
                                                "--out", str(tmp_path / "a.yaml")).output
    (tmp_path / "a.yaml").write_text("x")
    assert "exists already" in new("a", "--out", str(tmp_path / "a.yaml")).output


def test_new_then_tries_the_file_it_wrote_on_the_sample_prompts(scripted, tmp_path):
    path = tmp_path / "be-kind.yaml"
    result = CliRunner().invoke(main, ["principles", "new", "be-kind", "--out", str(path)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output.index(f"wrote {path}") < result.output.index("== 1/4 try-")
    assert "be-kind: 4 rounds" in result.output  # the trial's per-principle summary line


def test_the_engines_own_group_is_asked_only_while_it_starts(scripted, tmp_path, monkeypatch):
    """Left set, it would move the engines of every later command of this process out of their
    group, where killing that group no longer stops them."""
    from selfalign.quiet import ENGINE_OWN_GROUP

    monkeypatch.delenv(ENGINE_OWN_GROUP, raising=False)
    result = run_cli(str(write_principle(tmp_path / "starts.yaml")), "--limit", "1")
    assert result.exit_code == 0, result.output
    assert ENGINE_OWN_GROUP not in os.environ
