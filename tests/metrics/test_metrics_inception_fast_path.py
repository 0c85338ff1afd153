"""The channels-last fast path of InceptionFeatures agrees with the NCHW reference path."""

import torch

from textok.metrics import InceptionFeatures


def test_channels_last_features_match_the_reference_path():
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    net = InceptionFeatures()  # loaded once, the path toggled below
    assert net.channels_last  # the fast path is the default
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8, generator=g)
    fast = net(images)
    net.channels_last = False
    reference = net(images)
    assert fast.shape == reference.shape == (8, 2048)
    # stated tolerance: 1e-3 absolute (measured: ~6e-6 on 50 emoji, docs/results/throughput.md)
    assert (fast - reference).abs().max().item() <= 1e-3
    assert not torch.allclose(reference[0], reference[1])  # distinct images, distinct features
