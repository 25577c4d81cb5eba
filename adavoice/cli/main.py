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
    # plain help: rich tables print a "<bool>" type beside every flag and do not fit a log
    rich_markup_mode=None,
)


def _register() -> None:
    from adavoice.cli import adapt, asr, corpus, evaluate, export, lang, synth, train, vocode

    app.add_typer(corpus.app, name="corpus", help="Build synthetic corpora and import real ones.")
    app.add_typer(lang.app, name="lang", help="Language packs (list, show, new) and the LRSpeech "
                                              "bootstrap of a new language.")
    app.command(name="eval", help="Compare synthesized audio with references (MCD, F0, V/UV, "
                                  "CER/WER, predicted MOS).")(evaluate.eval_command)
    app.add_typer(asr.app, name="asr", help="Speech recognition: transcribe, eval (CTC).")
    app.add_typer(train.app, name="train",
                  help="Train models (base, vocoder, speaker encoder, mel encoder).")
    app.command(name="adapt", help="Adapt the base to a new voice from ~20 clips.")(
        adapt.adapt_command
    )
    app.command(name="synth", help="Synthesize speech from text.")(synth.synth_command)
    app.command(name="vocode", help="Copy-synthesis: audio -> mel -> audio, per file.")(
        vocode.vocode_command
    )
    app.command(name="export", help="Write a deployable bundle: ONNX graphs (the voice is an "
                                    "input) + voices, for the runtime without torch.")(
        export.export_command
    )
    app.command(name="serve", help="HTTP server over a bundle (/voices, /synthesize, /health)."
                )(export.serve_command)


@app.callback()
def _options(threads: int = typer.Option(
        None, "--threads", help="CPU threads for torch (default: OMP_NUM_THREADS, else the "
                                "cores the 1-minute load average leaves idle, at least 1)")
             ) -> None:
    from adavoice.threads import apply_threads, choose_threads

    apply_threads(choose_threads(threads))


_register()


def _click_errors() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(usage error, abort) classes of the click typer runs on and of plain click: typer 0.29
    and later vendor their own copy of click, older typer uses click itself."""
    usage = [cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "ClickException"]
    aborts = [typer.Abort]
    try:
        import click
    except ImportError:
        pass
    else:
        usage.append(click.exceptions.ClickException)
        aborts.append(click.exceptions.Abort)
    return tuple(usage), tuple(aborts)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; an AdavoiceError prints `error: <message>` and exits 1, no traceback; a
    usage error prints click's usage message and exits 2; Ctrl-C prints `interrupted` and
    exits 130."""
    usage_errors, aborts = _click_errors()
    try:
        # not standalone: typer returns an Exit's code (130 for Ctrl-C) instead of exiting
        code = app(args=argv, standalone_mode=False)
    except AdavoiceError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        code = 130
    except usage_errors as err:
        err.show()
        sys.exit(err.exit_code)
    except aborts:  # older click turns Ctrl-C (and EOF at a prompt) into Abort
        code = 130
    if isinstance(code, int) and not isinstance(code, bool) and code != 0:
        if code == 130:
            print("interrupted", file=sys.stderr)
        sys.exit(code)


if __name__ == "__main__":
    main()
