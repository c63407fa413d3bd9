"""nox sessions on uv: the same commands as the Makefile, each in its own fresh venv."""

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "tests"]


@nox.session
def tests(session: nox.Session) -> None:
    """The fast tests; `nox -s tests -- -m lock` runs the real uv resolution ones."""
    session.install("-e", ".[dev]")
    session.run("pytest", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "src", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "benchmarks", "noxfile.py")


@nox.session
def matrix(session: nox.Session) -> None:
    """The pipeline; `nox -s matrix -- --select ci` (default) or any other selection."""
    session.install("-e", ".")
    session.run("audiomatrix", "matrix", *(session.posargs or ["--select", "ci"]))
