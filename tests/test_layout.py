"""The architecture, checked: layers import downwards only; the library never imports the orchestration or web
layers; no hidden caches of loaded things."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "qa_pipeline"

# Lowest first. A module may import its own layer and the layers below it, never one above.
LAYERS = ["core", "store", "audio", "speech", "analysis", "privacy", "scoring", "render", "pipeline", "cli"]
CORE_MODULES = {"errors", "types", "config", "__init__"}
# Never imported by the library, not even lazily inside a function.
# Module-level registries filled at import time with code (not with loaded data): allowed.
REGISTRIES = {"MIGRATIONS"}
FORBIDDEN = ("prefect", "prefect_dask", "flows", "webapp", "fastapi", "starlette", "uvicorn", "dask")


def _layer(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    if len(rel.parts) == 1:
        return "core" if rel.stem in CORE_MODULES else rel.stem
    return rel.parts[0]


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                raise AssertionError(f"{path}:{node.lineno}: relative import; use `from qa_pipeline.<layer> ...`")
            out.append((node.lineno, node.module or ""))
            if node.module == "qa_pipeline":
                out += [(node.lineno, f"qa_pipeline.{a.name}") for a in node.names]
    return out


def test_every_module_has_a_known_layer():
    unknown = {str(p.relative_to(PACKAGE)) for p in _modules() if _layer(p) not in LAYERS}
    assert not unknown, f"modules outside the declared layers {LAYERS}: {sorted(unknown)}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path: Path):
    mine = LAYERS.index(_layer(path))
    for lineno, name in _imports(path):
        top = name.split(".")[0]
        assert top not in FORBIDDEN, f"{path.relative_to(PACKAGE)}:{lineno} imports {name}: the library must not"
        if top != "qa_pipeline" or name == "qa_pipeline":
            continue
        target = name.split(".")[1]
        layer = "core" if target in CORE_MODULES else target
        if layer == "__version__":
            continue
        assert layer in LAYERS, f"{path.relative_to(PACKAGE)}:{lineno} imports unknown {name}"
        assert LAYERS.index(layer) <= mine, (
            f"{path.relative_to(PACKAGE)}:{lineno} ({_layer(path)}) imports {name} ({layer}), a higher layer")


def test_no_hidden_caches_of_loaded_things():
    """Loaded models, matchers and lexicons live in resource objects passed to each call, never in module
    globals or lru_caches a long-lived multi-threaded server would share by accident."""
    found = []
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for dec in node.decorator_list:
                    text = ast.unparse(dec)
                    if "lru_cache" in text or text in ("cache", "functools.cache"):
                        found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} @{text} {node.name}")
            if isinstance(node, ast.Global):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} global {', '.join(node.names)}")
        for node in tree.body:  # module-level mutable containers named like caches
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                value = node.value
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                empty = isinstance(value, ast.Dict) and not value.keys or (
                    isinstance(value, ast.Call) and ast.unparse(value.func) in ("dict", "OrderedDict", "WeakValueDictionary"))
                if empty and names and names[0] not in REGISTRIES:
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} module-level {names[0]} = {{}}")
    assert not found, "hidden caches:\n" + "\n".join(found)


def test_library_never_writes_sys_modules():
    """Hiding torch from thinc must not hide it from anyone else (another thread may import it meanwhile)."""
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = node.targets if isinstance(node, ast.Assign) else node.targets if isinstance(node, ast.Delete) else []
            for t in targets:
                assert not (isinstance(t, ast.Subscript) and ast.unparse(t.value) == "sys.modules"), (
                    f"{path.relative_to(PACKAGE)}:{node.lineno} changes sys.modules")


def test_spacy_imported_without_torch_and_torch_still_importable():
    import subprocess
    import sys

    code = ("import sys; from qa_pipeline.analysis.nlp import import_spacy; import_spacy(); "
            "assert 'torch' not in sys.modules; import thinc.compat as c; assert not c.has_torch; "
            "import importlib.util; assert importlib.util.find_spec('torch') is None or __import__('torch')")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_presidio_loaded_without_torch():
    """Presidio's predefined recognizers import torch for a Hugging Face recognizer we never use (seconds of every
    run's start-up): the privacy detector loads without it."""
    import subprocess
    import sys

    code = ("import sys; from qa_pipeline.config import PrivacyOptions; "
            "from qa_pipeline.privacy.detect import PrivacyResources; PrivacyResources(PrivacyOptions()).analyzer; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
