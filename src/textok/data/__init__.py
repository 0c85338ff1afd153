"""Data: image-caption datasets (folder, class tree, WebDataset shards), the real datasets
fetched from package registries, captioning, and the text-embedding cache.

Modules, each importing only the ones listed before it:

- ``captions``: the caption variants (condition-richness ablation);
- ``transforms``: image reading and crops (``ImageError``);
- ``formats``: file names, JSON lines, the bad-sample policy, ``BadSampleReport``, format detection;
- ``shards``: the WebDataset layout and its streaming reader;
- ``datasets``: folders and class trees, ``open_dataset`` (any format), ``collate``;
- ``stream``: deterministic shard streams for training, ``open_split``;
- ``shard_writer``, ``captioning``, ``check``, ``fetch``, ``text_cache``: writers and tools.
"""

from .captioning import caption_folder
from .captions import CAPTION_VARIANTS, caption_variant, caption_variants
from .check import check_dataset
from .datasets import ImageCaptionDataset, collate, list_splits, load_caption_pool, open_dataset
from .fetch import DATASETS, fetch
from .memory import InMemoryDataset
from .formats import ON_BAD_SAMPLE, BadSampleError, BadSampleReport, detect_format
from .shard_writer import write_shards
from .shards import ShardDataset
from .stream import open_split
from .text_cache import TextCache, build_text_cache, load_text_cache
from .transforms import ImageError, center_crop, load_image, make_grid, random_crop, to_pil, to_tensor, to_uint8

__all__ = [
    "open_dataset", "open_split", "collate", "fetch", "DATASETS", "load_text_cache", "build_text_cache", "TextCache",
    "BadSampleError", "BadSampleReport", "ON_BAD_SAMPLE", "ImageCaptionDataset", "ShardDataset", "write_shards",
    "check_dataset", "detect_format", "list_splits", "load_caption_pool", "caption_folder", "caption_variant",
    "caption_variants", "CAPTION_VARIANTS", "ImageError", "load_image", "center_crop", "random_crop", "to_tensor",
    "to_pil", "to_uint8", "make_grid", "InMemoryDataset",
]
