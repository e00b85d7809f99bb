"""A stand-in for ComfyUI's ``comfy_api.latest`` (the V3 node API) as far as our nodes use it.

It builds the same ``/object_info`` entries (``GET_NODE_INFO_V1``) and calls ``execute`` the way the
real one does. ``tests/comfy_api_reference.json`` holds what a real ComfyUI says about the same
API and about our nodes; ``test_comfy_api.py`` compares the two so this stand-in cannot drift
(regenerate the file with ``tests/snapshot_comfy_api.py`` run by a real ComfyUI's Python).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any


def _prune(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


class classproperty:  # noqa: N801  (named like the builtin decorators it sits beside)
    def __init__(self, getter) -> None:
        self.getter = getter

    def __get__(self, instance, owner):
        return self.getter(owner)


class Input:
    io_type = "*"

    def __init__(self, id: str, display_name: str = None, optional=False, tooltip: str = None, lazy: bool = None,
                 extra_dict=None, raw_link: bool = None) -> None:
        self.id, self.display_name, self.optional, self.tooltip = id, display_name, optional, tooltip
        self.lazy, self.extra_dict, self.raw_link = lazy, extra_dict or {}, raw_link

    def as_dict(self) -> dict:
        return _prune({"display_name": self.display_name, "optional": self.optional, "tooltip": self.tooltip,
                       "lazy": self.lazy, "rawLink": self.raw_link}) | _prune(self.extra_dict)


class WidgetInput(Input):
    def __init__(self, id: str, display_name: str = None, optional=False, tooltip: str = None, lazy: bool = None,
                 default: Any = None, socketless: bool = None, widget_type: str = None, force_input: bool = None,
                 extra_dict=None, raw_link: bool = None) -> None:
        super().__init__(id, display_name, optional, tooltip, lazy, extra_dict, raw_link)
        self.default, self.socketless, self.widget_type, self.force_input = default, socketless, widget_type, \
            force_input

    def as_dict(self) -> dict:
        return super().as_dict() | _prune({"default": self.default, "socketless": self.socketless,
                                           "widgetType": self.widget_type, "forceInput": self.force_input})


class Output:
    io_type = "*"

    def __init__(self, id: str = None, display_name: str = None, tooltip: str = None, is_output_list=False) -> None:
        self.id, self.display_name, self.tooltip, self.is_output_list = id, display_name or id, tooltip, \
            is_output_list


def _comfy_type(io_type: str, input_base: type = Input) -> type:
    """A ComfyUI type: a class with ``Input`` and ``Output`` bound to ``io_type``."""
    return type(io_type, (), {"io_type": io_type,
                              "Input": type("Input", (input_base,), {"io_type": io_type}),
                              "Output": type("Output", (Output,), {"io_type": io_type})})


def Custom(io_type: str) -> type:  # noqa: N802  (ComfyUI's name)
    return _comfy_type(io_type)


class _IntInput(WidgetInput):
    def __init__(self, id: str, display_name: str = None, optional=False, tooltip: str = None, lazy: bool = None,
                 default: int = None, min: int = None, max: int = None, step: int = None,
                 control_after_generate: bool = None, display_mode=None, socketless: bool = None,
                 force_input: bool = None, extra_dict=None, raw_link: bool = None) -> None:
        super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input,
                         extra_dict, raw_link)
        self.min, self.max, self.step, self.control_after_generate = min, max, step, control_after_generate

    def as_dict(self) -> dict:
        return super().as_dict() | _prune({"min": self.min, "max": self.max, "step": self.step,
                                           "control_after_generate": self.control_after_generate})


class _FloatInput(WidgetInput):
    def __init__(self, id: str, display_name: str = None, optional=False, tooltip: str = None, lazy: bool = None,
                 default: float = None, min: float = None, max: float = None, step: float = None,
                 round: float = None, display_mode=None, socketless: bool = None, force_input: bool = None,
                 extra_dict=None, raw_link: bool = None) -> None:
        super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input,
                         extra_dict, raw_link)
        self.min, self.max, self.step, self.round = min, max, step, round

    def as_dict(self) -> dict:
        return super().as_dict() | _prune({"min": self.min, "max": self.max, "step": self.step,
                                           "round": self.round})


class _BooleanInput(WidgetInput):
    def __init__(self, id: str, display_name: str = None, optional=False, tooltip: str = None, lazy: bool = None,
                 default: bool = None, label_on: str = None, label_off: str = None, socketless: bool = None,
                 force_input: bool = None, extra_dict=None, raw_link: bool = None) -> None:
        super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input,
                         extra_dict, raw_link)
        self.label_on, self.label_off = label_on, label_off

    def as_dict(self) -> dict:
        return super().as_dict() | _prune({"label_on": self.label_on, "label_off": self.label_off})


class _ComboInput(WidgetInput):
    def __init__(self, id: str, options: list = None, display_name: str = None, optional=False, tooltip: str = None,
                 lazy: bool = None, default=None, control_after_generate: bool = None, upload=None,
                 image_folder=None, remote=None, socketless: bool = None, extra_dict=None,
                 raw_link: bool = None) -> None:
        super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, None, extra_dict,
                         raw_link)
        self.options, self.control_after_generate = options, control_after_generate

    def as_dict(self) -> dict:
        return super().as_dict() | _prune({"multiselect": False, "options": self.options,
                                           "control_after_generate": self.control_after_generate})


Int = _comfy_type("INT", _IntInput)
Float = _comfy_type("FLOAT", _FloatInput)
Boolean = _comfy_type("BOOLEAN", _BooleanInput)
Combo = _comfy_type("COMBO", _ComboInput)
Image = _comfy_type("IMAGE")
Mask = _comfy_type("MASK")
Latent = _comfy_type("LATENT")
Audio = _comfy_type("AUDIO")
Vae = _comfy_type("VAE")


@dataclass
class Schema:
    node_id: str
    display_name: str = None
    category: str = "sd"
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    hidden: list = field(default_factory=list)
    description: str = ""
    is_input_list: bool = False
    is_output_node: bool = False
    is_deprecated: bool = False
    is_experimental: bool = False
    is_api_node: bool = False
    not_idempotent: bool = False
    enable_expand: bool = False

    def validate(self) -> None:
        ids = [i.id for i in self.inputs]
        if len(set(ids)) != len(ids) or len({o.id for o in self.outputs}) != len(self.outputs):
            raise ValueError(f"{self.node_id}: input and output ids must be unique")

    def v1_info(self) -> dict:
        inputs: dict = {"required": {}}
        for i in self.inputs:
            spec = i.as_dict()
            spec.pop("optional", None)
            inputs.setdefault("optional" if i.optional else "required", {})[i.id] = (i.io_type, spec)
        return {
            "input": inputs, "input_order": {key: list(value) for key, value in inputs.items()},
            "output": [o.io_type for o in self.outputs], "output_is_list": [o.is_output_list for o in self.outputs],
            "output_name": [o.display_name or o.io_type for o in self.outputs],
            "output_tooltips": [o.tooltip or None for o in self.outputs], "output_matchtypes": None,
            "name": self.node_id, "display_name": self.display_name, "description": self.description,
            "category": self.category, "output_node": self.is_output_node, "deprecated": self.is_deprecated,
            "experimental": self.is_experimental, "api_node": self.is_api_node,
        }


class NodeOutput:
    def __init__(self, *args: Any, ui=None, expand: dict = None, block_execution: str = None) -> None:
        self.args, self.ui, self.expand, self.block_execution = args, ui, expand, block_execution

    @property
    def result(self):
        return self.args if self.args else None

    def __getitem__(self, index: int) -> Any:
        return self.args[index]


class ComfyNode:
    """Node classes are used through classmethods only, as ComfyUI's execution does."""

    @classmethod
    def define_schema(cls) -> Schema:
        raise NotImplementedError

    @classmethod
    def execute(cls, **kwargs) -> NodeOutput:
        raise NotImplementedError

    @classmethod
    def GET_SCHEMA(cls) -> Schema:  # noqa: N802
        schema = cls.define_schema()
        schema.validate()
        return schema

    @classmethod
    def GET_NODE_INFO_V1(cls) -> dict:  # noqa: N802
        return cls.GET_SCHEMA().v1_info()

    @classmethod
    def INPUT_TYPES(cls) -> dict:  # noqa: N802
        return cls.GET_SCHEMA().v1_info()["input"]

    @classproperty
    def RETURN_TYPES(cls) -> list[str]:  # noqa: N802
        return cls.GET_SCHEMA().v1_info()["output"]

    @classproperty
    def RETURN_NAMES(cls) -> list[str]:  # noqa: N802
        return cls.GET_SCHEMA().v1_info()["output_name"]

    @classproperty
    def FUNCTION(cls) -> str:  # noqa: N802
        return "EXECUTE_NORMALIZED_ASYNC" if inspect.iscoroutinefunction(cls.execute) else "EXECUTE_NORMALIZED"

    @classmethod
    def EXECUTE_NORMALIZED(cls, *args, **kwargs) -> NodeOutput:  # noqa: N802
        result = cls.execute(*args, **kwargs)
        if not isinstance(result, NodeOutput):
            raise TypeError(f"{cls.__name__}.execute must return an io.NodeOutput, got {type(result).__name__}")
        return result


class ComfyExtension:
    async def on_load(self) -> None:
        """ComfyUI's hook (not called by ComfyUI 0.8.0)."""

    async def get_node_list(self) -> list[type[ComfyNode]]:
        raise NotImplementedError
