"""Two-stage fine-tuning (--fine_tune_epoch=K): the head first, then the backbone too.

Stage 1 (0-based epochs 0..K-1) trains the head only, exactly as --freeze_backbone;
stage 2 (epochs K..) also trains the last --fine_tune_layers blocks of the backbone
(`model.backbone_blocks`; 0: all) with a second optimizer of --fine_tune_learning_rate
(default --learning_rate / 10), fresh at the switch as in the Keras transfer-learning
guide's recompile. BatchNorm follows --bn_mode in both stages: with pretrained weights
(auto: inference) its statistics, scale and offset stay fixed, as the guide keeps them.
The stage is a function of the epoch and both optimizers are in the snapshot, so a
resumed run continues in the right stage with the right optimizer state.
"""

from absl import logging
import keras

from augbal_tf import config as config_lib
from augbal_tf import model as model_lib


def stage(config: config_lib.TrainConfig, epoch: int) -> int:
    """The stage (1 or 2) of 0-based `epoch`; always 1 when fine-tuning is off."""
    return 2 if config.fine_tune_epoch and epoch >= config.fine_tune_epoch else 1


def learning_rate(config: config_lib.TrainConfig) -> float:
    """--fine_tune_learning_rate, or --learning_rate / 10 when it is 0 (unset)."""
    return config.fine_tune_learning_rate or config.learning_rate / 10


def block_variables(blocks: list[list[keras.layers.Layer]]) -> list:
    return [variable for block in blocks for layer in block for variable in layer.trainable_variables]


def stage_two_variables(model: keras.Model, layers: int) -> list:
    """The head's trainable variables and those of the backbone's last `layers` blocks (0: all).

    In the model's own variable order, so the optimizer's slots have stable positions.
    """
    blocks = model.backbone_blocks
    chosen = {id(variable) for variable in block_variables(blocks[-layers:] if layers else blocks)}
    chosen |= {id(variable) for variable in model.head_variables}
    return [variable for variable in model.trainable_variables if id(variable) in chosen]


def check(config: config_lib.TrainConfig) -> None:
    """The fine-tuning checks that need the architecture; call before anything is written.

    Counts the backbone's blocks (building keras.applications models once with random
    weights, only for --fine_tune_layers > 0) and logs a warning for fine-tuning a
    random-init backbone.

    Raises:
      ValueError: if --fine_tune_layers exceeds the backbone's blocks.
    """
    if not config.fine_tune_epoch:
        return
    if config.weights == "none":
        logging.warning("--fine_tune_epoch=%d with --weights=none: stage 1 trains the head on a random "
                        "backbone (a warm-up), not on pretrained features", config.fine_tune_epoch)
    if config.fine_tune_layers:
        count = model_lib.backbone_block_count(config.model, config.image_size)
        if config.fine_tune_layers > count:
            raise ValueError(f"--fine_tune_layers={config.fine_tune_layers} is not valid for "
                             f"--model={config.model}: its backbone has {count} blocks; allowed: 0 (all) "
                             f"to {count}")
