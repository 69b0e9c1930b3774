"""The `selfalign` command line: thin click commands that parse options and call one function.

Each subsystem keeps its commands beside its code; this module only assembles them. Heavy
libraries (torch, vllm, trl) are imported inside the functions, so `--help` stays instant.
"""

from __future__ import annotations

import sys

import click

from selfalign import __version__
from selfalign.errors import NothingToDo, UserError
from selfalign.quiet import configure_output, follow_vllm_level, leave_terminal_group_if_asked

# vLLM's engine processes are spawned and import this module first: quiet them before vLLM loads,
# and keep them out of the terminal's Ctrl-C where the command asks (principles try).
follow_vllm_level()
leave_terminal_group_if_asked()


class _FriendlyGroup(click.Group):
    """Prints UserError as a plain message (no traceback) and exits 2; NothingToDo exits 0."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(2)
        except NothingToDo as done:
            click.echo(str(done))
            sys.exit(0)


@click.group(cls=_FriendlyGroup)
@click.version_option(__version__, prog_name="selfalign")
@click.option("--verbose", is_flag=True,
              help="Show every line the libraries print (vLLM, transformers, warnings); "
                   "also SELFALIGN_VERBOSE=1. By default a run prints only its own lines.")
def main(verbose: bool) -> None:
    """Make alignment training data by constitutional self-critique."""
    configure_output(verbose)


def _register() -> None:
    from selfalign.author.commands import new_command, try_command
    from selfalign.checks.commands import checks
    from selfalign.constitution.commands import principles, validate
    from selfalign.eval.checks_commands import score as score_checks
    from selfalign.eval.commands import eval_command
    from selfalign.generate.commands import generate
    from selfalign.label.commands import label
    from selfalign.store.commands import verify
    from selfalign.prompts.commands import prompts
    from selfalign.train.commands import train

    principles.add_command(try_command)
    principles.add_command(new_command)
    checks.add_command(score_checks)  # it reads constitutions and runs: it cannot live in checks/
    for command in (validate, principles, generate, verify, prompts, train, eval_command, label,
                    checks):
        main.add_command(command)


_register()

if __name__ == "__main__":
    main()
