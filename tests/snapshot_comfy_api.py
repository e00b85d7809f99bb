"""Write ``tests/comfy_api_reference.json``: what a real ComfyUI's ``comfy_api.latest`` says about
the parts of its API our nodes use (signatures) and about our nodes (their ``/object_info``).

Run it with a real ComfyUI's Python from the ComfyUI folder, after changing a node's schema or
moving to another ComfyUI version::

    cd ComfyUI && python /path/to/plugin/tests/snapshot_comfy_api.py

``test_comfy_api.py`` then checks the stand-in (``comfy_api_stub.py``) against the file.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = Path(__file__).with_name("comfy_api_reference.json")
# The comfy_api.latest names our nodes and the stand-in use, as "attribute.path" under comfy_api.latest.
API_NAMES = ["io.Input", "io.WidgetInput", "io.Output", "io.Int.Input", "io.Float.Input", "io.Boolean.Input",
             "io.Combo.Input", "io.Image.Input", "io.Custom", "io.Schema", "io.NodeOutput",
             "ComfyExtension.get_node_list"]


def signature(obj) -> list[list[str]]:
    """[name, kind, default] of each parameter (``self`` left out)."""
    target = obj.__init__ if inspect.isclass(obj) else obj
    return [[p.name, p.kind.name, "" if p.default is inspect.Parameter.empty else repr(p.default)]
            for p in inspect.signature(target).parameters.values() if p.name != "self"]


def resolve(module, dotted: str):
    for part in dotted.split("."):
        module = getattr(module, part)
    return module


def node_infos(nodes) -> dict[str, dict]:
    """``GET_NODE_INFO_V1`` of each node as JSON would carry it, less where the plugin sits."""
    infos = {}
    for cls in nodes:
        info = json.loads(json.dumps(cls.GET_NODE_INFO_V1()))
        info.pop("python_module", None)
        infos[info["name"]] = info
    return infos


def load_plugin_nodes(name: str = "megactor_plugin") -> list:
    spec = importlib.util.spec_from_file_location(name, ROOT / "__init__.py", submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    extension = asyncio.run(module.comfy_entrypoint())
    return asyncio.run(extension.get_node_list())


def main() -> None:
    sys.path.insert(0, os.getcwd())
    import comfy.cli_args

    comfy.cli_args.args.cpu = True
    import comfy_api.latest as latest
    import comfyui_version
    import folder_paths

    folder_paths.models_dir = tempfile.mkdtemp()  # empty model folders: file choices are []
    snapshot = {
        "comfyui_version": comfyui_version.__version__,
        "signatures": {name: signature(resolve(latest, name)) for name in API_NAMES},
        "nodes": node_infos(load_plugin_nodes()),
    }
    REFERENCE.write_text(json.dumps(snapshot, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {REFERENCE} (ComfyUI {snapshot['comfyui_version']}, {len(snapshot['nodes'])} nodes)")


if __name__ == "__main__":
    main()
