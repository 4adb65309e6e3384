"""Build the function app's deployment folder the way Azure's remote build does, measure it, and index the app from it.

Remote build (Oryx) runs `pip install -r requirements.txt --target .python_packages/lib/site-packages` in the app's
folder; the Functions Python worker then puts that folder on sys.path, imports function_app.py and indexes every
function (`app.get_functions()` and each one's bindings). This script does the same in a fresh venv that holds
nothing but pip, so nothing of a development venv leaks in.

    python infra/functions_package.py [--out .cache/functions-package] [--index]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What `func azure functionapp publish` / azd package from the app root (everything else is in .funcignore)
APP_FILES = ("function_app.py", "host.json", "requirements.txt", "pyproject.toml", "README.md")
APP_DIRS = ("functions", "shared")
SITE = Path(".python_packages") / "lib" / "site-packages"
LIMIT_MB = 400
# The Functions Python worker's indexing of a v2-model app, run inside the package (stdout: one JSON object)
INDEX = """
import json, function_app
functions = function_app.app.get_functions()
print(json.dumps({f.get_function_name(): [json.loads(b) for b in f.get_raw_bindings()] for f in functions}))
"""


def stage(out: Path) -> Path:
    """The app folder as it is uploaded: function_app.py, host.json, requirements.txt and the code it installs."""
    out = out.resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in APP_FILES:
        shutil.copy2(ROOT / name, out / name)
    for name in APP_DIRS:
        shutil.copytree(ROOT / name, out / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return out


def fresh_python(where: Path) -> Path:
    """A venv with pip only (Python 3.11, the app's runtime), standing in for the build image's interpreter."""
    where = where.resolve()
    if not (where / "bin" / "python").exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(where)
    return where / "bin" / "python"


def install(app: Path, python: Path) -> Path:
    """pip install -r requirements.txt --target .python_packages/lib/site-packages (pip's own cache is used)."""
    site = app / SITE
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-warn-script-location",
                    "-r", "requirements.txt", "--target", str(site)], cwd=app, check=True)
    return site


def size_mb(folder: Path) -> float:
    total = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink())
    return total / 1e6


def largest(site: Path, count: int = 8) -> list[tuple[str, float]]:
    sizes = [(p.name, size_mb(p)) for p in site.iterdir() if p.is_dir() and not p.name.endswith((".dist-info", "__pycache__"))]
    return sorted(sizes, key=lambda item: -item[1])[:count]


def distributions(site: Path) -> list[str]:
    return sorted(p.name.split("-")[0].lower().replace("_", "-") for p in site.glob("*.dist-info"))


def index(app: Path, python: Path, *, extra_code: str = "") -> dict[str, list[dict[str, object]]]:
    """Import function_app from the package (the app folder and its site-packages only) and index every function."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "BANKOPS_", "VIRTUAL_ENV"))}
    env["PYTHONPATH"] = os.pathsep.join([str(app), str(app / SITE)])
    env["PYTHONNOUSERSITE"] = "1"
    done = subprocess.run([str(python), "-c", INDEX + extra_code], cwd=app, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"indexing function_app from the package failed:\n{done.stderr[-4000:]}")
    indexed: dict[str, list[dict[str, object]]] = json.loads(done.stdout.strip().splitlines()[0])
    return indexed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".cache" / "functions-package")
    parser.add_argument("--python-env", type=Path, default=ROOT / ".cache" / "functions-build-venv")
    parser.add_argument("--index", action="store_true", help="also import function_app from the package and list its functions")
    args = parser.parse_args()
    python = fresh_python(args.python_env)
    app = stage(args.out)
    site = install(app, python)
    mb = size_mb(site)
    print(f"function package: {app}")
    verdict = "under" if mb < LIMIT_MB else "OVER"
    print(f"installed size of {SITE}: {mb:.0f} MB ({len(distributions(site))} distributions; {verdict} the {LIMIT_MB} MB target)")
    for name, part in largest(site):
        print(f"  {name:<28} {part:7.1f} MB")
    if args.index:
        for name, bindings in index(app, python).items():
            print(f"  function {name}: {', '.join(str(b['type']) for b in bindings)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
