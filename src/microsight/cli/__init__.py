"""The ``microsight`` command line: a thin layer over :mod:`microsight.api`.

Errors in the user's input print one line (``microsight: error: ...``) and
exit with status 2; no traceback, no partial output. Heavy modules (the API,
hence PyTorch) load inside the commands that need them, so ``--help``,
``methods`` and ``config`` answer at once.
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
import warnings
from pathlib import Path
from typing import Annotated

import typer

from microsight.acquire.cli import acquire_app
from microsight.cli._app import Overwrite, _api, _sizes, app, console
from microsight.errors import MicrosightError
from microsight.serve import serve

# Importing the command modules registers their commands, in the order --help lists them.
from microsight.cli import run as run  # isort: skip
from microsight.cli import describe as describe  # isort: skip

__all__ = ["app", "main"]

app.add_typer(acquire_app, name="acquire")

# The web app: the command only starts uvicorn on the app's import string.
app.command("serve")(serve)

simulate_app = typer.Typer(help="Simulate data with known ground truth.", no_args_is_help=True)
app.add_typer(simulate_app, name="simulate")


@simulate_app.command("smlm")
def simulate_smlm(
    out: Annotated[Path, typer.Option("--out", "-o", help="Movie to write (.tif, .ome.zarr).")],
    table: Annotated[Path | None, typer.Option(help="Ground-truth CSV (default: next to "
                                                    "the movie).")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML file of simulation settings.")] =
    None,
    frames: Annotated[int | None, typer.Option(help="Number of frames.")] = None,
    size: Annotated[str | None, typer.Option(help="Frame size, e.g. 64 or 64,128.")] = None,
    density: Annotated[float | None, typer.Option(help="Emitters per frame and um^2.")] = None,
    structure: Annotated[str | None, typer.Option(
        help="random, filaments, clusters or table (with --sites).")] = None,
    sites: Annotated[Path | None, typer.Option(help="Table of binding sites (nm).")] = None,
    psf: Annotated[str | None, typer.Option(help="gaussian, integrated or astigmatic.")] =
    None,
    camera: Annotated[str | None, typer.Option(help="emccd, scmos or ideal.")] = None,
    photons: Annotated[float | None, typer.Option(help="Mean photons per emitter.")] = None,
    background: Annotated[float | None, typer.Option(help="Background photons/pixel.")] =
    None,
    pixel_size: Annotated[float | None, typer.Option(help="Pixel size (nm).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    thunderstorm: Annotated[bool, typer.Option(help="ThunderSTORM CSV columns.")] = False,
    overwrite: Overwrite = False,
) -> None:
    """Simulate a blinking SMLM movie and its ground-truth localization table."""
    shape = _sizes(size)
    movie, truth = _api().simulate_smlm(
        out, table, config=config, sites=sites,
        table_format="thunderstorm" if thunderstorm else "native",
        frames=frames, shape=shape * 2 if shape and len(shape) == 1 else shape,
        density=density, structure=structure, psf=psf,
        camera={"model": camera} if camera else None, photons=photons,
        background=background, pixel_size=pixel_size, seed=seed, overwrite=overwrite)
    console.print(f"wrote {movie} and {truth}")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # One unwrapped line per warning, like the errors.
    print(f"microsight: warning: {message}", file=sys.stderr)


def _save_traceback(exc: BaseException) -> Path | None:
    """Write the full traceback of an unexpected error to a temporary file."""
    try:
        fd, name = tempfile.mkstemp(prefix="microsight-error-", suffix=".txt")
        with os.fdopen(fd, "w") as fh:
            fh.write(f"microsight {' '.join(sys.argv[1:])}\n\n")
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=fh)
        return Path(name)
    except OSError:
        return None


def _usage_error(exc: Exception) -> int:
    """A command-line parser error as one line (typer bundles its own click)."""
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    ctx = getattr(exc, "ctx", None)
    where = f"; see '{ctx.command_path} --help'" if ctx is not None else ""
    print(f"microsight: error: {' '.join(str(message).split())}{where}", file=sys.stderr)
    return int(exc.exit_code)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI; every failure ends in one line on stderr.

    User errors exit 2; an interrupted command 130; an unexpected internal error
    1, with the path of a file holding its traceback (``--debug`` prints it).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        return _run(args, debug)


def _run(args: list[str], debug: bool) -> int:
    try:
        code = app(args=args, standalone_mode=False)
        if isinstance(code, int):  # typer.Exit(n) inside a command
            return code
    except MicrosightError as exc:
        # Plain print: one unwrapped line, whatever the terminal width.
        print(f"microsight: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("microsight: error: interrupted (a training run continues with --resume)",
              file=sys.stderr)
        return 130
    except Exception as exc:
        if hasattr(exc, "exit_code"):
            if hasattr(exc, "format_message"):
                return _usage_error(exc)
            return int(exc.exit_code)
        if debug:
            raise
        saved = _save_traceback(exc)
        where = f"full traceback in {saved}" if saved else "run again with --debug"
        text = " ".join(str(exc).split())[:200]
        print(f"microsight: error: internal error {type(exc).__name__}: {text} ({where}; "
              "please report it)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
