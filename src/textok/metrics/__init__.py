"""Evaluation metrics, computed the way the field computes them (see docs/evaluation.md).

- ``psnr``, ``ssim``: per image on uint8-quantised images (SSIM = scikit-image's Gaussian SSIM).
- ``InceptionFeatures``: TF Inception 2015-12-05 pool3 features [N, 2048] (TF1 bilinear resize to 299).
- ``frechet_distance``, ``feature_stats``, ``Stats``, ``save_stats``, ``load_stats``,
  ``reference_stats``: FID and ADM-layout ``.npz`` statistics.
- ``precision_recall``: improved precision/recall on k-NN manifolds (k = 3).
- ``inception_score``, ``InceptionLogits``: IS / rIS from user-supplied classifier weights.
- ``clip_score``, ``CLIPScorer``: CLIP score with a local Hugging Face CLIP folder.

The protocols, one module each:

- ``reference``: the images an evaluation scores (``iterate_batches``) and their reference statistics:
  ``dataset_stats``; ``image_fingerprint`` / ``check_reference``: is a statistics file from these images?
  ``reference_subset``: a whole split's features narrowed to the images an evaluation with ``num`` scores;
- ``tokenizer_eval``: ``evaluate_tokenizer`` (rFID, PSNR, SSIM, LPIPS, rIS side by side), with the caption-swap
  rules of ``caption_swap`` (``decode_caption_map``: which caption each image is decoded with);
- ``generation_eval``: ``evaluate_generation`` (gFID, precision/recall, IS, CLIP score of a sample batch);
- ``report``: what their reports share (the status line, the report files).
"""

from .caption_swap import decode_caption_map
from .clip_score import CLIPScorer, clip_score
from .fid import (Stats, feature_stats, fid_from_features, frechet_distance, frechet_distance_to_features,
                  load_images_npz, load_stats, reference_stats, save_stats)
from .generation_eval import evaluate_generation
from .image import psnr, quantize, ssim
from .inception import InceptionFeatures, resize_tf1_bilinear
from .inception_score import InceptionLogits, inception_score, load_classifier_weights
from .prdc import knn_radii, precision_recall
from .reference import check_reference, dataset_stats, image_fingerprint, iterate_batches, reference_subset
from .tokenizer_eval import TokenizerEvalSettings, evaluate_tokenizer

__all__ = [
    "psnr", "ssim", "quantize", "InceptionFeatures", "resize_tf1_bilinear", "frechet_distance", "feature_stats",
    "frechet_distance_to_features", "fid_from_features", "Stats", "save_stats", "load_stats", "reference_stats", "load_images_npz",
    "precision_recall", "knn_radii", "inception_score", "InceptionLogits", "load_classifier_weights", "clip_score",
    "CLIPScorer", "evaluate_tokenizer", "TokenizerEvalSettings", "decode_caption_map", "evaluate_generation", "dataset_stats", "iterate_batches",
    "image_fingerprint", "check_reference", "reference_subset",
]
