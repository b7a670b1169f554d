"""The browser app's ES module graph, read from the files under static/app/ (no build step, no list kept
by hand), so that the page can ask for a screen's whole graph at once.

A browser that loads an ES module finds its imports only after it has fetched and parsed it, one level
of the graph per round trip (Konva alone is ~100 modules, five levels deep). The shell page lists
main.js's static graph as `<link rel="modulepreload">`, and for each screen that main.js imports
dynamically (`import("./task.js")`) the URLs of its static graph, which main.js preloads together when
the screen opens. A graph that is stale (a file changed after it was read) only misses a preload: the
browser still follows the real imports."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.templatetags.static import static

APP_DIR = Path(__file__).resolve().parent / "static" / "app"
# The page's import map: bare specifiers -> files under static/app/ (vendor/ is `make vendor`'s copy).
IMPORTS = {
    "konva": "vendor/konva/index.js",
    "onnxruntime-web": "vendor/onnxruntime-web/ort.wasm.min.mjs",
    "preact": "vendor/preact/preact.module.js",
    "preact/hooks": "vendor/preact/hooks.module.js",
    "htm": "vendor/htm/htm.module.js",
    "htm/preact": "vendor/htm/index.module.js",
    "idb-keyval": "vendor/idb-keyval/index.js",
}
ENTRY = "main.js"
# `import x from "y"`, `import "y"`, `export { x } from "y"` (also across lines); not `import("y")`,
# which is the point where a graph is cut on purpose. A match inside a comment at worst preloads a file.
STATIC_IMPORT = re.compile(
    r"""(?:^|[;}\s])(?:import|export)\s*(?:[\w$*{}\s,]*?\bfrom\s*)?["']([^"'\s]+)["']"""
)
DYNAMIC_IMPORT = re.compile(r"""\bimport\(\s*["']([^"'\s]+)["']\s*\)""")


def _resolve(specifier: str, importer: str, root: Path) -> str | None:
    """The file (relative to static/app/) that `specifier` names in module `importer`, if it is ours."""
    if specifier in IMPORTS:
        path = IMPORTS[specifier]
    elif specifier.startswith(("./", "../")):
        parts: list[str] = importer.split("/")[:-1]
        for part in specifier.split("/"):
            if part == "..":
                if not parts:
                    return None
                parts.pop()
            elif part != ".":
                parts.append(part)
        path = "/".join(parts)
    else:
        return None
    return path if (root / path).is_file() else None


class ModuleGraph:
    """Static imports of every module under static/app/, and the dynamic ones (the screens)."""

    def __init__(self, root: Path = APP_DIR) -> None:
        self.imports: dict[str, list[str]] = {}
        self.lazy: list[str] = []
        for file in sorted(root.rglob("*.js")) + sorted(root.rglob("*.mjs")):
            name = file.relative_to(root).as_posix()
            text = file.read_text(encoding="utf-8", errors="replace")
            self.imports[name] = [p for s in STATIC_IMPORT.findall(text) if (p := _resolve(s, name, root))]
            if not name.startswith("vendor/"):
                self.lazy += [p for s in DYNAMIC_IMPORT.findall(text) if (p := _resolve(s, name, root))]
        self.lazy = list(dict.fromkeys(self.lazy))

    def closure(self, entry: str) -> list[str]:
        """`entry` and every module it imports statically, breadth first (the browser's fetch order)."""
        order = [entry]
        seen = {entry}
        for module in order:  # grows while it is walked
            for dep in self.imports.get(module, ()):
                if dep not in seen:
                    seen.add(dep)
                    order.append(dep)
        return order

    @functools.cached_property
    def preloads(self) -> dict:
        """For the page: main.js's graph, and each lazily imported screen's graph less what main.js has."""
        main = self.closure(ENTRY)
        loaded = set(main)
        url = lambda m: static(f"app/{m}")  # noqa: E731
        return {
            "main": [url(m) for m in main],
            "screens": {m: [url(d) for d in self.closure(m) if d not in loaded] for m in self.lazy},
        }


def _mtimes(root: Path) -> Iterator[float]:
    for file in root.rglob("*.*js"):
        yield file.stat().st_mtime


@functools.lru_cache(maxsize=1)
def _graph(stamp: float) -> ModuleGraph:
    return ModuleGraph()


def module_graph() -> ModuleGraph:
    """Read once per process; under DEBUG again whenever a module changed (a developer editing them)."""
    return _graph(max(_mtimes(APP_DIR), default=0.0) if settings.DEBUG else 0.0)


def import_map() -> dict:
    return {"imports": {k: static(f"app/{v}") for k, v in IMPORTS.items()}}
