"""Reading ComfyUI UI-format workflows: the core nodes they may use, checks, and UI -> API prompts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

WORKFLOWS = sorted((Path(__file__).resolve().parents[1] / "workflows").glob("*.json"))
UI_ONLY = {"Note", "MarkdownNote"}
# Core nodes the examples may use, as ComfyUI 0.8.0's /object_info describes them:
# (link inputs, widget inputs, extra UI-only widget values, output types).
CORE_NODES: dict[str, tuple[list[str], list[str], int, list[str]]] = {
    "LoadImage": ([], ["image"], 1, ["IMAGE", "MASK"]),
    "LoadAudio": ([], ["audio"], 2, ["AUDIO"]),
    "LoadVideo": ([], ["file"], 1, ["VIDEO"]),
    "GetVideoComponents": (["video"], [], 0, ["IMAGE", "AUDIO", "FLOAT"]),
    "VAELoader": ([], ["vae_name"], 0, ["VAE"]),
    "VAEDecode": (["samples", "vae"], [], 0, ["IMAGE"]),
    "CreateVideo": (["images", "audio"], ["fps"], 0, ["VIDEO"]),
    "SaveVideo": (["video"], ["filename_prefix", "format", "codec"], 0, []),
}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def node_signature(node_type: str, plugin_nodes: dict) -> tuple[list[str], list[str], int, list[str]]:
    """(link inputs, widget inputs in order, extra widget values, outputs) of a node type."""
    if node_type in CORE_NODES:
        return CORE_NODES[node_type]
    cls = plugin_nodes[node_type]
    spec = cls.INPUT_TYPES()
    links, widgets = [], []
    for section in ("required", "optional"):
        for name, entry in spec.get(section, {}).items():
            kind = entry[0]
            (widgets if kind in WIDGET_TYPES else links).append(name)
    extra = sum(1 for name in widgets if name == "seed")  # the frontend's control_after_generate value
    return links, widgets, extra, list(cls.RETURN_TYPES)


def widget_values(node: dict, widgets: list[str]) -> dict[str, Any]:
    """A node's widget values by name (the seed's control_after_generate value skipped)."""
    values, rest = {}, list(node.get("widgets_values", []))
    for name in widgets:
        values[name] = rest.pop(0)
        if name == "seed":
            rest.pop(0)
    return values


def to_api(workflow: dict[str, Any], plugin_nodes: dict) -> dict[str, dict[str, Any]]:
    """The API-format prompt ComfyUI's /prompt takes, as its frontend would make it."""
    links = {link[0]: link for link in workflow["links"]}
    prompt = {}
    for node in workflow["nodes"]:
        if node["type"] in UI_ONLY:
            continue
        _, widgets, _, _ = node_signature(node["type"], plugin_nodes)
        inputs: dict[str, Any] = widget_values(node, widgets)
        for slot in node.get("inputs", []):
            if slot.get("link") is not None:
                _, source, source_slot, *_ = links[slot["link"]]
                inputs[slot["name"]] = [str(source), source_slot]
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return prompt
