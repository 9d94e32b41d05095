"""The ``spinv`` command line (thin: parses, calls the library, prints).

Each command group lives in its own module (``data_cmd``, ``reconstruct_cmd``, ...), which
exposes ``register(app)``; this module assembles them and turns a bad-input exception into one
error line and a non-zero exit, without a traceback.
"""

from __future__ import annotations

import importlib
import sys

import typer

from spinv.interruption import TrainingInterrupted

try:  # typer < 0.20 runs on click; later versions vendor it as typer._click
    from click.exceptions import Abort as CommandAborted
    from click.exceptions import Exit as CommandExit
    from click.exceptions import UsageError
except ImportError:  # pragma: no cover - depends on the installed typer
    from typer._click.exceptions import UsageError
    from typer.exceptions import Abort as CommandAborted
    from typer.exceptions import Exit as CommandExit

app = typer.Typer(
    name="spinv",
    help="Structure-preserving machine learning for imaging inverse problems (CT and MRI).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Command modules, in the order they appear in --help. Each defines register(app).
COMMAND_MODULES = [
    "spinv.cli.demo_cmd",
    "spinv.cli.data_cmd",
    "spinv.cli.simulate_cmd",
    "spinv.cli.reconstruct_cmd",
    "spinv.cli.train_cmd",
    "spinv.cli.models_cmd",
    "spinv.cli.sampling_cmd",
    "spinv.cli.lipschitz_cmd",
    "spinv.cli.generative_cmd",
    "spinv.cli.equivariance_cmd",
    "spinv.cli.nonexpansive_cmd",
    "spinv.cli.experiment_cmd",
]

_registered = False


def _register_all() -> None:
    global _registered
    if _registered:
        return
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:  # command module not written yet
                continue
            raise
        module.register(app)
    from spinv.cli._guard import guard_app

    guard_app(app)  # numbers checked before every command runs
    _registered = True


class UserError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``spinv`` console script; returns the exit code.

    Usage errors are reported by typer (exit code 2); bad input detected by the library
    (``ValueError``, ``TypeError``, ``FileNotFoundError``, ``OSError``) is printed as one
    ``error: ...`` line, exit code 2, without a traceback.
    """
    _register_all()
    import warnings

    def one_line_warning(message, category, filename, lineno, file=None, line=None):
        typer.echo(f"warning: {message}", err=True)

    previous, warnings.showwarning = warnings.showwarning, one_line_warning
    try:
        app(args=argv, prog_name="spinv", standalone_mode=False)
    except SystemExit as ex:
        code = ex.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except CommandExit as ex:  # --help, --version
        return ex.exit_code
    except UsageError as err:  # unknown option, missing value, bad type: one line
        hint = f" (see 'spinv {err.ctx.command_path.split(' ', 1)[-1]} --help')" \
            if err.ctx is not None and " " in err.ctx.command_path else ""
        typer.echo(f"error: {err.format_message()}{hint}", err=True)
        return 2
    except TrainingInterrupted as stop:
        typer.echo(f"interrupted: {stop}", err=True)
        return stop.exit_code
    except CommandAborted:
        typer.echo("error: interrupted; outputs already written are complete (atomic "
                   "writes), nothing was half-written", err=True)
        return 130
    except (ValueError, TypeError, FileNotFoundError, UserError, OSError, MemoryError) as err:
        from spinv.cli._guard import name_option, one_line

        text = name_option(str(err), sys.argv[1:] if argv is None else list(argv))
        if isinstance(err, MemoryError):
            text = f"not enough memory for this input: {text}"
        typer.echo(f"error: {one_line(text)}", err=True)
        return 2
    finally:
        warnings.showwarning = previous
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
