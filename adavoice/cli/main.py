"""`adavoice` entry point: assembles the command groups and turns typed errors into one line."""

from __future__ import annotations

import sys

import typer

from adavoice.errors import AdavoiceError

app = typer.Typer(
    name="adavoice",
    help="Low-resource and adaptive text-to-speech.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    from adavoice.cli import adapt, corpus, evaluate, lang, synth, train, vocode

    app.add_typer(corpus.app, name="corpus", help="Build synthetic corpora and import real ones.")
    app.add_typer(lang.app, name="lang", help="Language packs: list them, show normalisation.")
    app.command(name="eval", help="Compare synthesized audio with references (MCD, F0, V/UV).")(
        evaluate.eval_command
    )
    app.add_typer(train.app, name="train",
                  help="Train models (base, vocoder, speaker encoder, mel encoder).")
    app.command(name="adapt", help="Adapt the base to a new voice from ~20 clips.")(
        adapt.adapt_command
    )
    app.command(name="synth", help="Synthesize speech from text.")(synth.synth_command)
    app.command(name="vocode", help="Copy-synthesis: audio -> mel -> audio, per file.")(
        vocode.vocode_command
    )


_register()


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; an AdavoiceError prints `error: <message>` and exits 1, no traceback."""
    try:
        app(args=argv, standalone_mode=False)
    except AdavoiceError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as err:  # click's usage errors come here in non-standalone mode
        import click

        if isinstance(err, click.exceptions.ClickException):
            err.show()
            sys.exit(err.exit_code)
        if isinstance(err, click.exceptions.Abort):
            sys.exit(130)
        raise


if __name__ == "__main__":
    main()
