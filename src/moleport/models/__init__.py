"""Model builders (paper Figure 3: one-logit head) and checkpoints."""
from moleport.models.efficientnet_lite import EfficientNetLite0
from moleport.models.mobilenet_v1 import MobileNetV1, keras_state_dict_to_moleport
from moleport.models.registry import (
    ARCHITECTURES,
    Architecture,
    ModelError,
    build_backbone,
    build_model,
    freeze_prefix,
    get_architecture,
    read_state_dict,
    replace_head,
    set_train_mode,
)

__all__ = ["ARCHITECTURES", "Architecture", "EfficientNetLite0", "MobileNetV1", "ModelError", "build_backbone", "build_model", "freeze_prefix", "set_train_mode",
           "get_architecture", "keras_state_dict_to_moleport", "read_state_dict", "replace_head"]
