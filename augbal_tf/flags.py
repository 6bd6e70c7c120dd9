"""Every absl flag of augbal_tf, defined in one place.

All flags are optional with defaults, so any module imports cleanly in tests;
`augbal_tf.config.from_flags` turns them into a validated `TrainConfig`.
Flag names equal `TrainConfig` field names; the dataset flags are generated from
the fields of the builder's `VariantConfig` (names, defaults, help), where
`--sampling` is the flag of the field `strategy` (the one alias).
"""

from absl import flags

from augbal_datasets.augbal import config as data_config
from augbal_tf import config as config_lib
from augbal_tf import study_metric

# --- run and workspace ---
flags.DEFINE_string("workdir", None, "Output folder of the run (required by the train command).")
flags.DEFINE_bool("overwrite", False, "Delete a finished or differing workdir and start fresh.")
flags.DEFINE_bool("export", True, "Export the best model as a SavedModel under workdir/export.")

# --- dataset ---
flags.DEFINE_string("data_dir", None,
                    "tfds data folder; default $AUGBAL_WORKSPACE/tfds (AUGBAL_WORKSPACE "
                    "defaults to ~/augbal_workspace).")
flags.DEFINE_string("manual_dir", None,
                    "Folder of your own images (the builder's layouts); implies --source=manual.")


def _define_data_flag(field) -> None:
    """Defines the flag of one VariantConfig field from its declared kind, default and help."""
    name, kind, help_text = config_lib.data_flag_name(field), field.metadata["kind"], field.metadata["help"]
    default = (config_lib.data_value_to_flag(field, field.default_factory()) if kind == "json"
               else field.default)
    if kind in ("list", "names"):
        flags.DEFINE_list(name, config_lib.data_value_to_flag(field, default), help_text)
    elif kind == "bool":
        flags.DEFINE_bool(name, default, help_text)
    elif kind == "float":
        flags.DEFINE_float(name, default, help_text)
    elif kind == "int":
        flags.DEFINE_integer(name, default, help_text)
    elif kind in ("str", "choice", "count", "fraction", "json"):
        # Counts and fractions stay strings: "unset", "50" and "0.1" all parse in one place.
        flags.DEFINE_string(name, None if default is None else str(default), help_text)
    else:
        raise ValueError(f"VariantConfig field {field.name!r} declares an unknown flag kind {kind!r}")


# Generated from the variant's one declaration: adding a dataset setting is one edit there.
for _field in data_config.FIELDS:
    _define_data_flag(_field)

# --- model ---
flags.DEFINE_string("model", "resnet18",
                    "Backbone: resnet18 (random init, the paper's), efficientnet_lite0 (ImageNet weights "
                    "offline with the pretrained extra), resnet50, mobilenet_v3_small, efficientnet_b0 "
                    "(keras.applications; see augbal_tf.model.MODELS).")
flags.DEFINE_string("weights", "none",
                    "Backbone weights: none (random init), imagenet (efficientnet_lite0: converted once "
                    "from the pretrained extra's file into $AUGBAL_WORKSPACE/weights; keras.applications: "
                    "Keras' cache), or the path of a Keras .weights.h5 file.")
flags.DEFINE_string("bn_mode", "auto",
                    "Backbone BatchNorm: train (statistics update, the paper's frozen runs), inference "
                    "(moving statistics, frozen scale/offset: the Keras transfer-learning convention), "
                    "auto (inference with pretrained --weights, train otherwise).")
flags.DEFINE_integer("image_size", 224, "Side of the square model input in pixels (paper: 224).")
flags.DEFINE_integer("head_width", 512, "Width of the head's hidden Dense layer.")
flags.DEFINE_float("dropout", 0.2, "Dropout rate of the head.")
flags.DEFINE_bool("freeze_backbone", False,
                  "Train only the head (BatchNorm behaviour: --bn_mode).")
# --- two-stage fine-tuning (#12; augbal_tf.fine_tune) ---
flags.DEFINE_integer("fine_tune_epoch", 0,
                     "Two-stage fine-tuning: 0-based epochs 0..K-1 train the head only (as "
                     "--freeze_backbone), from epoch K the backbone too (--fine_tune_layers) with "
                     "--fine_tune_learning_rate and a fresh optimizer. 0: off (one stage). Must be < "
                     "--epochs; not with --freeze_backbone; random-init --weights=none is allowed (a "
                     "head warm-up) and logged. BatchNorm follows --bn_mode in both stages (auto with "
                     "pretrained weights: inference, so BatchNorm statistics, scale and offset stay fixed). "
                     "Early stopping is off in stage 1; --patience counts again from the switch, and "
                     "the selected epoch is the best of both stages.")
flags.DEFINE_integer("fine_tune_layers", 0,
                     "Stage 2 trains the last N blocks of the backbone (0: all): efficientnet_lite0 has 18 "
                     "(stem, 16 MBConv blocks, 1x1 head conv), resnet18 9 (stem, 8 basic blocks), "
                     "keras.applications models one per layer holding weights. Needs --fine_tune_epoch.")
flags.DEFINE_float("fine_tune_learning_rate", 0.0,
                   "Learning rate of stage 2 (0: --learning_rate / 10). Needs --fine_tune_epoch.")
# --- end two-stage fine-tuning ---
flags.DEFINE_string("feature_cache", "auto",
                    "auto: a frozen backbone in inference mode with nothing that varies its features per "
                    "epoch trains the head on pooled features computed once and cached in "
                    "$AUGBAL_WORKSPACE/features (augbal_tf.feature_cache); off: always the whole model.")

# --- training ---
flags.DEFINE_integer("seed", 0, "Seed of initialisation, dropout and shuffling (separate from --data_seed).")
flags.DEFINE_integer("epochs", 100, "Maximum number of epochs (paper: 100).")
flags.DEFINE_integer("batch_size", 64, "Global batch size (divisible by the number of replicas).")
flags.DEFINE_string("optimizer", "adam", "Optimizer: adam, adamw, sgd or rmsprop.")
flags.DEFINE_float("learning_rate", 3e-4, "Learning rate (paper: Adam 3e-4).")
flags.DEFINE_float("momentum", 0.9, "Momentum of sgd and rmsprop.")
flags.DEFINE_float("weight_decay", 0.0, "Weight decay (adamw, or decoupled decay for the others).")
flags.DEFINE_integer("patience", 11, "Early stopping: epochs without improvement before stopping (0: never).")
flags.DEFINE_string("selection", "validation",
                    "Model selection: validation (best validation balanced accuracy) or test "
                    "(paper-faithful: best test accuracy, leaks the test set).")
flags.DEFINE_string("class_weight", "none", "Loss class weights: none or balanced.")

# --- imbalance remedies (#13; augbal_tf.losses, augbal_tf.remedies) ---
flags.DEFINE_string("loss", "cross_entropy",
                    "Training loss: cross_entropy, focal, class_balanced, logit_adjusted, balanced_softmax "
                    "or ldam (with a cosine NormedDense head); counts are the trained train split's.")
flags.DEFINE_float("focal_gamma", 2.0, "--loss=focal: exponent of (1 - p) (0: cross-entropy).")
flags.DEFINE_float("cb_beta", 0.9999, "--loss=class_balanced and --drw_epoch: effective-number beta in [0, 1).")
flags.DEFINE_float("cb_gamma", 0.0, "--loss=class_balanced: 0 class-balanced cross-entropy, > 0 CB focal.")
flags.DEFINE_float("la_tau", 1.0, "--loss=logit_adjusted: tau of the log-prior offset.")
flags.DEFINE_float("ldam_max_margin", 0.5, "--loss=ldam: margin of the rarest class.")
flags.DEFINE_float("ldam_scale", 30.0, "--loss=ldam: scale s of the cosine logits.")
flags.DEFINE_integer("drw_epoch", 0,
                     "Deferred re-weighting (Cao et al.): class-balanced (--cb_beta) weights from this "
                     "0-based epoch on (0: off).")
flags.DEFINE_float("posthoc_tau", 0.0,
                   "Post-hoc logit adjustment f - tau log(prior) in evaluation and the export (0: off).")
flags.DEFINE_string("mix", "none", "Batch mixing in the training step: none, mixup or remix.")
flags.DEFINE_float("mix_alpha", 1.0, "--mix: Beta(alpha, alpha) of the mixing weight.")
flags.DEFINE_float("remix_kappa", 3.0, "--mix=remix: count-ratio threshold kappa.")
flags.DEFINE_float("remix_tau", 0.5, "--mix=remix: mixing-weight threshold tau.")
flags.DEFINE_integer("crt_epochs", 0,
                     "Classifier re-training (cRT, Kang et al. 2020): after the main training, the best "
                     "epoch's backbone is frozen (BatchNorm in inference mode), the head re-initialised and "
                     "trained N more epochs with class-balanced sampling and a fresh optimizer; the selected "
                     "epoch is the best of those (0: off). With --freeze_backbone it needs pretrained "
                     "--weights (then it is class-balanced head training after the plain one).")
flags.DEFINE_bool("tau_norm", False,
                  "tau-normalisation (Kang et al. 2020): the selected model's output kernel columns "
                  "become w_c / ||w_c||^tau and its bias 0, in evaluation and in the exported weights.")
flags.DEFINE_float("tau_norm_tau", None,
                   "--tau_norm's tau >= 0; unset: chosen from 0, 0.1, ..., 1 on the validation split's "
                   "balanced accuracy (ties: the smaller tau), as Kang et al. choose it on validation.")
flags.DEFINE_integer("drs_epoch", 0,
                     "Deferred re-sampling (Cao et al. 2019): plain shuffling before this 0-based epoch, "
                     "--sampler (class_balanced or square_root) from it on (0: off).")
# --- end imbalance remedies ---
# --- online augmentation and re-sampling (#14, #13; augbal_tf.input_pipeline) ---
flags.DEFINE_string("online_augmentation", "",
                    "augstatic name or policy applied to each training image every epoch, before resizing "
                    "(e.g. RandAugment, TrivialAugmentWide, AugMix, HorizontalFlip; empty: off).")
flags.DEFINE_string("online_augmentation_params", "", "JSON object of --online_augmentation's parameters.")
flags.DEFINE_string("online_classes", "all",
                    "Classes --online_augmentation applies to: all, or minority (the variant's --minority, "
                    "else the classes with the fewest training images).")
flags.DEFINE_string("sampler", "none",
                    "Online re-sampling of each epoch (augbal_tf.samplers): none, class_balanced or square_root.")
# --- end online augmentation and re-sampling ---
flags.DEFINE_bool("cache", True, "Cache decoded, resized images in memory.")
flags.DEFINE_integer("log_images", 16, "Sample training images in the TensorBoard grid (0: none).")

# --- execution ---
flags.DEFINE_string("distribution_strategy", "auto", "auto, mirrored, multi_worker or one_device.")
flags.DEFINE_integer("cpu_devices", 0,
                     "Split the CPU into N logical devices before TensorFlow starts (0: no split).")
flags.DEFINE_string("precision", "float32",
                    "Numeric precision of training: float32, bfloat16 (Keras mixed_bfloat16: fast on CPUs "
                    "with AMX / AVX512-BF16), float16 (mixed_float16 with loss scaling, the GPU choice) or "
                    "auto (bfloat16 where the CPU or GPU supports it, float32 otherwise). Variables, "
                    "BatchNorm statistics, the head and the loss stay float32; exports serve float32.")
flags.DEFINE_bool("mixed_precision", False, "Old spelling of --precision=float16.")
flags.DEFINE_bool("jit_compile", False, "XLA-compile the training step.")
flags.DEFINE_bool("deterministic", True, "Enable TensorFlow op determinism.")

# --- evaluate flags ---
# Used by `python -m augbal_tf.evaluate` only (owned by augbal_tf/evaluate.py); the dataset
# flags above select the variant to evaluate.
flags.DEFINE_string("saved_model", None,
                    "SavedModel folder written by training (workdir/export); required by evaluate.")
flags.DEFINE_string("split", "test", "Dataset split to evaluate: train, validation or test.")
flags.DEFINE_string("output", None,
                    "JSON file evaluate writes: the split's metrics, or with --images the "
                    "per-file predictions; required by evaluate.")
flags.DEFINE_string("images", None,
                    "Folder of image files (jpg, png, bmp, gif; searched recursively) to predict "
                    "instead of evaluating a dataset split.")
# --- end evaluate flags ---

# --- study flags ---
# Used by `python -m augbal_tf.study` only (owned by augbal_tf/study.py). Every training and
# dataset flag above is passed through to each cell; the study sets --sampling,
# --augmentation, --class_weight, --imbalance_ratio, --seed, --data_seed and --export per cell.
flags.DEFINE_string("study_dir", None,
                    "Output folder of the study: one workdir per cell, results.csv and the "
                    "summary.{csv,md,png} report (required by the study command).")
flags.DEFINE_list("ratios", ["8"],
                  "Imbalance ratios (majority:minority, numbers >= 1) of the grid, or 'natural' "
                  "for data that is already imbalanced (no cut, no gap fraction).")
flags.DEFINE_list("augmentations", [],
                  "Augmentations of the grid, one cell each (oversample_augment): augstatic "
                  "names, 'paper' (the paper's 33), 'all' (every registered transform) or "
                  "'effective_from:<study_dir>' (one cell: one of the transforms that finished study "
                  "found effective per generated image; augbal_tf.study_effective).")
flags.DEFINE_list("seeds", ["0", "1", "2"],
                  "Seeds of the grid; each is both --seed and --data_seed of its cells, so cells "
                  "of one seed are paired (at least 3 for intervals and verdicts). 'auto': seeds "
                  "0, 1, ... added in rounds (--min_seeds, --max_seeds, --budget_minutes) only to "
                  "comparisons a group-sequential test has not decided (augbal_tf.study_adaptive).")
flags.DEFINE_integer("min_seeds", 3, "--seeds=auto: seeds of every cell in the first round (>= 3).")
flags.DEFINE_integer("max_seeds", 10, "--seeds=auto: seeds of a comparison at the last look.")
flags.DEFINE_float("target_effect", 0.02,
                   "Effect in the --metric (0.02 = 2 points) the power columns size seeds for; "
                   "with --seeds=auto also the futility width (an interval narrower than it around zero stops).")
flags.DEFINE_string("metric", study_metric.DEFAULT,
                    "Test metric the study compares, decides verdicts by and ranks by (also advise's winner): "
                    + ", ".join(study_metric.METRICS) + ". ece is lower-is-better: its paired difference is "
                    "the unbalanced baseline's minus the cell's, so positive still means better.")
flags.DEFINE_list("baselines", ["balanced", "unbalanced"],
                  "Baseline cells: balanced, unbalanced, undersample, oversample_random, "
                  "class_weight (unbalanced sampling + --class_weight=balanced). unbalanced is "
                  "always run: it is the reference of every comparison.")
flags.DEFINE_list("remedies", [],
                  "Remedy cells (#13), each unbalanced sampling + one remedy, compared with the unbalanced "
                  "baseline of the same seed: logit_adjusted, balanced_softmax, ldam_drw (DRW from 80% of "
                  "--epochs), focal, class_balanced, mixup, remix, posthoc (--posthoc_tau=1), crt (10% of "
                  "--epochs added as cRT epochs), tau_norm (tau chosen on validation), drs (class-balanced "
                  "sampling from 80% of --epochs), or all. <Augmentation>+<remedy> (e.g. "
                  "FancyPCA+logit_adjusted) is a combined cell: augmentation oversampling with that "
                  "transform trained with the remedy, named remedy:FancyPCA+logit_adjusted.")
flags.DEFINE_list("online_augmentations", [],
                  "Online augmentation cells (#14), each unbalanced sampling + one augstatic transform or "
                  "policy applied to every training image every epoch (e.g. randaugment,trivialaugmentwide), "
                  "compared with the unbalanced baseline of the same seed. <Transform>+<pairing> pairs it "
                  "with more minority draws: +class_balanced or +square_root (--sampler), +oversample_random "
                  "(random oversampling), +minority (random oversampling, the transform on the minority "
                  "classes only), e.g. randaugment+class_balanced, named online:RandAugment+class_balanced.")
flags.DEFINE_integer("screen", 0,
                     "Before the grid, rank --augmentations by affinity and diversity (Gontijo-Lopes et al. "
                     "2020; one clean reference run and one run per candidate at the first ratio and seed) and "
                     "train the grid only on the K best by z_affinity + z_diversity; baselines, remedies and "
                     "online cells are never screened. Recorded in screen.json (reused on rerun) and the "
                     "report's scatter. 0: no screening.")
flags.DEFINE_bool("keep_datasets", True,
                  "Keep prepared dataset variants; false deletes each variant once all its "
                  "cells are done.")
flags.DEFINE_integer("cells_per_process", 2,
                     "Cells trained in one child process before it is replaced (memory stays flat over "
                     "long studies: a child keeps ~160-300 MB of each cell it trained, whatever it releases; "
                     "benchmarks/results/study_memory.md; a cell that trains the head alone on cached features "
                     "counts as 1/6 of one: it keeps ~24 MB, and the child one backbone for computing missing "
                     "features); 0 trains every cell in the study's own process.")
flags.DEFINE_bool("export_cells", False,
                  "Export a SavedModel in every cell (about 90 MB each at 224 px); cells always "
                  "keep metrics.json and the best weights.")
flags.DEFINE_integer("num_shards", 1,
                     "Split the study's cells into N shards (N machines sharing --study_dir: a SLURM array, a "
                     "Kubernetes Indexed Job; see WORKSPACE.md); each shard trains every N-th cell of the "
                     "grid and writes no report. Every shard needs the same flags. Also advise.")
flags.DEFINE_integer("shard_index", 0, "The shard this process trains, in [0, --num_shards). Also advise.")
flags.DEFINE_bool("report_only", False,
                  "Train nothing: write results.csv, summary.* and report.html of every finished cell (the "
                  "merge of the shards, as one process would write them; missing cells are counted) and "
                  "ignore --num_shards/--shard_index. advise: also choose the winner and train the final "
                  "model. Without TensorFlow for the study.")
# --- end study flags ---

# --- advise flags ---
# Used by `python -m augbal_tf.advise` only (owned by augbal_tf/advise.py); --manual_dir and
# --workdir are required there, and every training flag passes through to the runs.
flags.DEFINE_float("budget_minutes", 30.0,
                   "Wall-time budget of advise's study on this machine; it sizes the seeds and "
                   "drops candidates that do not fit. The study reads it only with --seeds=auto and only "
                   "when given (the default 30 is advise's): no round starts whose estimated cell time "
                   "would take the cells' summed training time past it (0: no budget).")
flags.DEFINE_bool("dry_run", False, "advise: print the plan and its estimated duration, train nothing.")
# --- end advise flags ---
