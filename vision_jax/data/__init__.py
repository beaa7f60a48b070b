"""Datasets and input pipelines.

Every dataset is a TFDS dataset in array_record format, read through Grain
without TensorFlow. Four are built in and generated locally: `shapes`
(procedural scenes, the default), `digits` (scikit-learn's handwritten
digits), `moving_shapes` (clips of one moving shape, batched as
[B, T, H, W, C]; label = the motion) and `shapes3d` (rendered analytic 3-D
shapes with their cameras, voxels and surface points). Any other TFDS dataset works by name
once prepared in data_dir.

    prepare(config.data)               # generates a built-in dataset if absent
    info = dataset_info(config.data)   # num_classes, image_shape, split_sizes
    it = make_train_iterator(config.data, global_batch_size=256, seed=0,
                             process_index=jax.process_index(),
                             process_count=jax.process_count())
    batch = next(it); state = it.get_state()   # save `state` with the model
"""

from vision_jax.data.pipeline import (
    BUILTIN,
    DEFAULT_DATA_DIR,
    DatasetInfo,
    DatasetNotFoundError,
    dataset_info,
    make_eval_batches,
    make_train_iterator,
    prepare,
    prepare_command,
)

__all__ = [
    "BUILTIN",
    "DEFAULT_DATA_DIR",
    "DatasetInfo",
    "DatasetNotFoundError",
    "dataset_info",
    "make_eval_batches",
    "make_train_iterator",
    "prepare",
    "prepare_command",
]
