"""Compile a trained network to standalone C99 (``to_c``), for the host and for ARM."""

from ._codegen import CExport, InputScaling, to_c
from ._emit import UNROLLED_MAX_NNZ, ExportError, LayerEmitter, register_layer_emitter

__all__ = ["to_c", "CExport", "InputScaling", "ExportError", "LayerEmitter",
           "register_layer_emitter", "UNROLLED_MAX_NNZ"]
