"""The `bankops` Typer app and what every command module shares: consoles, the --home option, error handling.

Command modules import from here, and `shared.cli.main` imports them: one direction, no circle. Nothing here
imports the backend at module level, so `bankops --help` starts without scikit-learn, MLflow or pandas.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from shared.errors import BankopsError

if TYPE_CHECKING:
    from shared.bootstrap import Backend
    from shared.config import Settings

app = typer.Typer(help="Hands-off AutoML, registry and serving for the bank marketing data.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
console = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

HomeOpt = Annotated[Path | None, typer.Option("--home", help="Where runs, models and data live (default $BANKOPS_HOME or ./.bankops).")]


def friendly_errors(fn: F) -> F:
    """A BankopsError becomes its message and exit code 2, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BankopsError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]  # functools.wraps keeps the signature Typer reads


def load_settings(home: Path | None = None, **overrides: Any) -> Settings:
    """`shared.config.load_settings`, imported when a command runs (pydantic-settings costs a fifth of `--help`)."""
    from shared.config import load_settings as load

    return load(home=home, **overrides)


def backend_for(home: Path | None, **overrides: Any) -> tuple[Settings, Backend]:
    """Settings and the backend they select, built when a command needs them (not when the CLI starts)."""
    from shared.bootstrap import bootstrap

    settings = load_settings(home=home, **overrides)
    return settings, bootstrap(settings)
