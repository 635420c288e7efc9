"""Make generated proto folders importable packages (protoc writes no __init__.py)."""

import pathlib
import sys

root = pathlib.Path(sys.argv[1])
for folder in [root, *[p for p in root.rglob("*") if p.is_dir()]]:
    (folder / "__init__.py").touch()
