"""Stand-in for the one native module mediapipe's metadata writer needs but the 1.2.3 wheel lacks.

``mediapipe.tasks.python.metadata.metadata`` imports
``mediapipe.tasks.cc.metadata.python._pywrap_metadata_version`` only to stamp
``ModelMetadata.min_parser_version``. :func:`minimum_parser_version` is a Python port of
MediaPipe's ``metadata_version.cc`` rule (the largest schema version among the fields
present); :func:`install` registers it under the missing module name when, and only when,
the real module cannot be imported. Everything else comes from mediapipe itself.
"""
from __future__ import annotations

import importlib
import sys
import types

MODULE = "mediapipe.tasks.cc.metadata.python._pywrap_metadata_version"
BASE_VERSION = (1, 0, 0)


def _file_version(f, fb) -> tuple[int, int, int]:
    v = BASE_VERSION
    if f.Type() == fb.AssociatedFileType.VOCABULARY:
        v = max(v, (1, 0, 1))
    if f.Type() == fb.AssociatedFileType.SCANN_INDEX_FILE:
        v = max(v, (1, 4, 0))
    if f.Version() is not None:
        v = max(v, (1, 4, 1))
    return v


def _files_version(owner, fb) -> tuple[int, int, int]:
    return max([BASE_VERSION] + [_file_version(owner.AssociatedFiles(i), fb) for i in range(owner.AssociatedFilesLength())])


def _units_version(units, fb) -> tuple[int, int, int]:
    table = {fb.ProcessUnitOptions.BertTokenizerOptions: (1, 1, 0),
             fb.ProcessUnitOptions.SentencePieceTokenizerOptions: (1, 1, 0),
             fb.ProcessUnitOptions.RegexTokenizerOptions: (1, 2, 1)}
    return max([BASE_VERSION] + [table.get(u.OptionsType(), BASE_VERSION) for u in units])


def _tensor_version(t, fb) -> tuple[int, int, int]:
    v = max(_files_version(t, fb), _units_version([t.ProcessUnits(i) for i in range(t.ProcessUnitsLength())], fb))
    content = t.Content()
    if content is not None and content.ContentPropertiesType() == fb.ContentProperties.AudioProperties:
        v = max(v, (1, 3, 0))
    return v


def _subgraph_version(sg, fb) -> tuple[int, int, int]:
    tensors = [sg.InputTensorMetadata(i) for i in range(sg.InputTensorMetadataLength())]
    tensors += [sg.OutputTensorMetadata(i) for i in range(sg.OutputTensorMetadataLength())]
    v = max([_files_version(sg, fb)] + [_tensor_version(t, fb) for t in tensors])
    if not sg.InputProcessUnitsIsNone():
        v = max(v, (1, 1, 0), _units_version([sg.InputProcessUnits(i) for i in range(sg.InputProcessUnitsLength())], fb))
    if not sg.OutputProcessUnitsIsNone():
        v = max(v, (1, 1, 0), _units_version([sg.OutputProcessUnits(i) for i in range(sg.OutputProcessUnitsLength())], fb))
    if not sg.InputTensorGroupsIsNone() or not sg.OutputTensorGroupsIsNone():
        v = max(v, (1, 2, 0))
    if not sg.CustomMetadataIsNone():
        v = max(v, (1, 5, 0))
    return v


def minimum_parser_version(metadata_buffer: bytes) -> str:
    """Smallest metadata parser version that understands every field in ``metadata_buffer``."""
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

    buf = bytes(metadata_buffer)
    if len(buf) < 8 or not fb.ModelMetadata.ModelMetadataBufferHasIdentifier(buf, 0):
        raise ValueError("not a TFLite ModelMetadata flatbuffer (identifier 'M001' missing)")
    md = fb.ModelMetadata.GetRootAs(buf, 0)
    v = max([_files_version(md, fb)] + [_subgraph_version(md.SubgraphMetadata(i), fb)
                                        for i in range(md.SubgraphMetadataLength())])
    return ".".join(str(n) for n in v)


def install() -> bool:
    """Make ``import``\\ing mediapipe's metadata writer work; True when the shim was registered."""
    try:
        importlib.import_module(MODULE)
        return False
    except ImportError:
        pass
    parts = MODULE.split(".")
    for i in range(3, len(parts)):  # mediapipe.tasks.cc, ...cc.metadata, ...metadata.python
        name = ".".join(parts[:i])
        if name not in sys.modules:
            pkg = types.ModuleType(name)
            pkg.__path__ = []  # a namespace-like package with no files
            sys.modules[name] = pkg
    leaf = types.ModuleType(MODULE, "moleport shim for mediapipe's missing _pywrap_metadata_version")
    leaf.GetMinimumMetadataParserVersion = minimum_parser_version
    sys.modules[MODULE] = leaf
    setattr(sys.modules[".".join(parts[:-1])], parts[-1], leaf)
    return True
