"""The ``comfy_api.latest`` stand-in against what a real ComfyUI said (``comfy_api_reference.json``,
written by ``snapshot_comfy_api.py``): the API our nodes use has the same signatures, and our nodes
give the real ComfyUI's ``/object_info`` under the stand-in."""

from __future__ import annotations

import json

import pytest

from tests import comfy_api_stub
from tests.comfy_stubs import load_plugin, plugin_nodes
from tests.snapshot_comfy_api import API_NAMES, REFERENCE, node_infos, resolve, signature

REAL = json.loads(REFERENCE.read_text())


class _Latest:  # comfy_api.latest as the stand-in lays it out
    io = comfy_api_stub
    ComfyExtension = comfy_api_stub.ComfyExtension


@pytest.mark.parametrize("name", API_NAMES)
def test_stand_in_signatures_are_the_real_ones(name):
    """Every parameter the stand-in takes, the real API takes too, at the same place with the same
    default; every parameter the real API needs, the stand-in takes."""
    ours = {p[0]: (i, p) for i, p in enumerate(signature(resolve(_Latest, name)))}
    real = {p[0]: (i, p) for i, p in enumerate(REAL["signatures"][name])}
    for param, (index, spec) in ours.items():
        assert param in real, f"{name}: ComfyUI {REAL['comfyui_version']} has no parameter {param!r}"
        assert real[param] == (index, spec), f"{name}.{param}: real {real[param]}, stand-in {(index, spec)}"
    assert {p for p, (_, spec) in real.items() if spec[2] == ""} <= ours.keys()


def test_our_nodes_describe_themselves_as_in_the_real_comfyui(monkeypatch, tmp_path):
    nodes = plugin_nodes(load_plugin(monkeypatch, tmp_path / "models"))  # empty model folders, as the snapshot
    ours = node_infos(nodes.values())
    assert ours.keys() == REAL["nodes"].keys()
    for node_id, info in ours.items():
        assert info == REAL["nodes"][node_id], (
            f"{node_id}'s schema differs from the reference: if the change is meant, rerun "
            "tests/snapshot_comfy_api.py with a real ComfyUI")


def test_the_reference_was_made_by_a_comfyui_with_the_v3_api():
    major, minor, patch = (int(x) for x in REAL["comfyui_version"].split("."))
    assert (major, minor, patch) >= (0, 3, 48)
