"""Find a Python matching the Lambda runtime (python3.13), which `sam build` needs on PATH.

`python -m local.lambda_python` prints the folder to put first on PATH, or
exits 1 with a hint when there is none.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

RUNTIME_VERSION = "3.13"


def _works(executable: str) -> bool:
    try:
        out = subprocess.run(
            [executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and out.stdout.strip() == RUNTIME_VERSION


def find_lambda_python() -> str | None:
    """The path of a working python3.13: on PATH, or one pyenv has installed."""
    candidates = []
    on_path = shutil.which(f"python{RUNTIME_VERSION}")
    if on_path:
        candidates.append(on_path)
    pyenv = shutil.which("pyenv")
    if pyenv:
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True).stdout.strip()
        versions = os.path.join(root, "versions")
        if os.path.isdir(versions):
            for name in sorted(os.listdir(versions), reverse=True):
                if name.startswith(RUNTIME_VERSION + "."):
                    candidates.append(os.path.join(versions, name, "bin", f"python{RUNTIME_VERSION}"))
    if sys.version_info[:2] == tuple(int(p) for p in RUNTIME_VERSION.split(".")):
        candidates.append(sys.executable)
    return next((c for c in candidates if os.path.exists(c) and _works(c)), None)


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m local.lambda_python", description=__doc__).parse_args(argv)
    found = find_lambda_python()
    if not found:
        print(
            f"no python{RUNTIME_VERSION} found: install it (pyenv install {RUNTIME_VERSION}) for sam build",
            file=sys.stderr,
        )
        return 1
    print(os.path.dirname(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
