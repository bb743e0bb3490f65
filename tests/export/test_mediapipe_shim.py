"""The stand-in for mediapipe's missing _pywrap_metadata_version."""
import flatbuffers
import pytest

from moleport.export import mediapipe_shim


def _metadata_buffer(**subgraph_fields) -> bytes:
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

    sg = fb.SubGraphMetadataT()
    sg.inputTensorMetadata = [fb.TensorMetadataT()]
    sg.outputTensorMetadata = [fb.TensorMetadataT()]
    for key, value in subgraph_fields.items():
        setattr(sg, key, value)
    md = fb.ModelMetadataT()
    md.name = "m"
    md.subgraphMetadata = [sg]
    b = flatbuffers.Builder(0)
    b.Finish(md.Pack(b), b"M001")
    return bytes(b.Output())


def test_minimum_version_follows_schema_history():
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

    assert mediapipe_shim.minimum_parser_version(_metadata_buffer()) == "1.0.0"
    assert mediapipe_shim.minimum_parser_version(_metadata_buffer(inputProcessUnits=[])) == "1.1.0"
    assert mediapipe_shim.minimum_parser_version(_metadata_buffer(outputTensorGroups=[])) == "1.2.0"
    assert mediapipe_shim.minimum_parser_version(_metadata_buffer(customMetadata=[])) == "1.5.0"
    vocab = fb.AssociatedFileT()
    vocab.name, vocab.type = "v.txt", fb.AssociatedFileType.VOCABULARY
    assert mediapipe_shim.minimum_parser_version(_metadata_buffer(associatedFiles=[vocab])) == "1.0.1"


def test_rejects_non_metadata_buffer():
    with pytest.raises(ValueError, match="M001"):
        mediapipe_shim.minimum_parser_version(b"not a flatbuffer at all")


def test_install_makes_the_writer_importable():
    mediapipe_shim.install()
    from mediapipe.tasks.cc.metadata.python import _pywrap_metadata_version as mod
    from mediapipe.tasks.python.metadata.metadata_writers import image_classifier  # noqa: F401

    assert mod.GetMinimumMetadataParserVersion(_metadata_buffer()) == "1.0.0"
    assert mediapipe_shim.install() is False  # second call: already importable, nothing re-registered
