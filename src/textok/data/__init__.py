"""Data: image-caption datasets (folder, class tree, WebDataset shards), the real datasets
fetched from package registries, captioning, and the text-embedding cache."""

from .captions import CAPTION_VARIANTS, caption_folder, caption_variant, caption_variants
from .check import check_dataset
from .datasets import (
    BadSampleError,
    BadSampleReport,
    ImageCaptionDataset,
    collate,
    detect_format,
    list_splits,
    load_caption_pool,
    open_dataset,
)
from .fetch import DATASETS, fetch
from .shards import ShardDataset, write_shards
from .text_cache import TextCache, build_text_cache, load_text_cache
from .transforms import ImageError, center_crop, load_image, make_grid, random_crop, to_pil, to_tensor, to_uint8

__all__ = [
    "open_dataset", "collate", "fetch", "DATASETS", "load_text_cache", "build_text_cache", "TextCache",
    "BadSampleError", "BadSampleReport", "ImageCaptionDataset", "ShardDataset", "write_shards", "check_dataset",
    "detect_format", "list_splits", "load_caption_pool", "caption_folder", "caption_variant", "caption_variants",
    "CAPTION_VARIANTS", "ImageError", "load_image", "center_crop", "random_crop", "to_tensor", "to_pil", "to_uint8",
    "make_grid",
]
