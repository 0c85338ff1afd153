"""studies/scenes/swaps.py: the swapped captions and the detector that judges decoded images, checked on renders
of the swapped scenes themselves (a perfect decoder follows every swap exactly; the unswapped image none)."""

import copy
import json

import numpy as np
import pytest

from textok.data import scenes


@pytest.fixture(scope="module")
def sw(scenes_study):
    return scenes_study("swaps")


def _entries(n=60, seed=11):
    out = []
    for s in scenes.generate_scenes(n, 1, 32, seed)["train"]:
        objs = [dict(o, x=scenes.object_centre(o, 32)[0], y=scenes.object_centre(o, 32)[1],
                     radius=scenes.object_radius(o, 32)) for o in s["objects"]]
        out.append({"file": "x", "caption": scenes.scene_captions(s)["full"], "background": s["background"],
                    "objects": objs, "scene": s})
    return out


def _swapped_scene(entry, factor, swap):
    s = copy.deepcopy(entry["scene"])
    if factor == "background":
        s["background"] = swap["new"]
    else:
        o = s["objects"][swap["object"]]
        if factor == "colour":
            o["colour"] = swap["new"]
        else:
            o.update(cell=swap["new"], position=scenes.POSITIONS[swap["new"]], dx=0, dy=0)
    return s


def test_detector_follows_true_swaps_and_rejects_the_original(sw):
    for i, e in enumerate(_entries()):
        original = np.asarray(scenes.render_scene(e["scene"], 32))
        assert sw.judge(original, e, None, None) == {"followed": True, "others_kept": True, "exact": True}
        for factor, swap in sw.swaps(e, i).items():
            assert swap["caption"] != e["caption"]
            truth = np.asarray(scenes.render_scene(_swapped_scene(e, factor, swap), 32))
            assert sw.judge(truth, e, factor, swap)["exact"], (factor, e["caption"], swap)
            assert not sw.judge(original, e, factor, swap)["followed"], (factor, e["caption"], swap)


def test_swapped_captions_change_one_factor(sw):
    e = _entries(1, seed=2)[0]
    s = sw.swaps(e, 0)
    o = e["objects"][0]
    assert s["colour"]["caption"].replace(s["colour"]["new"], o["colour"], 1) == e["caption"]
    assert f"at {scenes.POSITIONS[s['position']['new']]}" in s["position"]["caption"]
    assert f"on a {s['background']['new']} background" in s["background"]["caption"]
