"""The page's API from ``gradio_client``: named endpoints and parameters, nothing internal
published, exact PNG outputs; and how ``launch`` talks about the address it binds."""

import contextlib
import io
import socket

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")

from textok import explore, load_tensor  # noqa: E402
from textok.app import API_NAMES, host_warning, launch  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(explorer, scene_explorer):
    """The page (both tabs) served in the background on a free loopback port, and what ``launch`` printed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        demo = launch(explorer, host="127.0.0.1", port=_free_port(), block=False, scenes=scene_explorer)
    try:
        yield demo, out.getvalue(), err.getvalue()
    finally:
        demo.close()


@pytest.fixture(scope="module")
def client(served):
    return gradio_client.Client(served[0].local_url, verbose=False)


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("api") / "photo.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(path)
    return path


def test_the_api_has_one_named_endpoint_per_action_and_nothing_internal(client):
    api = client.view_api(print_info=False, return_format="dict")
    assert api["unnamed_endpoints"] == {}
    params = {name: [p["parameter_name"] for p in e["parameters"]] for name, e in api["named_endpoints"].items()}
    assert params == {"/reconstruct": ["image", "example", "caption", "num_tokens"],  # no DiT: no /generate
                      "/swap_caption": ["image", "example", "caption", "other_caption", "num_tokens"],
                      "/sweep_tokens": ["image", "example", "caption"],
                      "/scene_reconstruct": ["caption"], "/scene_edit": ["caption", "edited_caption"]}
    assert API_NAMES["swap"] == "swap_caption"
    with pytest.raises(ValueError, match="Cannot find a function"):  # the page-internal events (example -> caption, upload -> example) are not callable
        client.predict("dog", api_name="/lambda")


def test_reconstruct_returns_the_exact_output_as_png(client, explorer, photo, minilm):
    from textok.inference import reconstruct

    orig, base, tex, table, status = client.predict(image=gradio_client.handle_file(str(photo)), example=None,
                                                    caption="a red square", num_tokens="2", api_name="/reconstruct")
    assert status == "" and "| TexTok |" in table
    assert all(str(p).endswith(".png") for p in (orig, base, tex))
    model = explorer.pair(2)["TexTok"].model
    want = np.asarray(explore.to_pil(reconstruct([photo], model, ["a red square"], encoder=minilm)[0]))
    got = np.asarray(Image.open(tex))
    assert got.shape == (32, 32, 3) and np.array_equal(got, want)  # pixel-equal: no resize, no lossy codec
    crop = np.asarray(explore.to_pil(load_tensor(Image.open(photo), 32)))
    assert np.array_equal(np.asarray(Image.open(orig)), crop)


def test_swap_and_sweep_by_name(client, photo):
    rec, swapped, diff, table, status = client.predict(
        image=gradio_client.handle_file(str(photo)), example=None, caption="a dog", other_caption="a red car",
        num_tokens="2", api_name="/swap_caption")
    assert status == "" and "Largest pixel change" in table
    peak = int(table.split("Largest pixel change: **")[1].split("**")[0])
    a, b = (np.asarray(Image.open(p), dtype=int) for p in (rec, swapped))
    assert np.abs(a - b).max() == peak  # the two PNGs differ exactly as the table says: nothing lost on the way
    gallery, table, status = client.predict(image=None, example="dog", caption="", api_name="/sweep_tokens")
    assert status == "" and [g["caption"].split(":")[0] for g in gallery] == ["original", "N=2 baseline", "N=2 TexTok",
                                                                             "N=4 TexTok"]
    assert all(g["image"].endswith(".png") and Image.open(g["image"]).size == (32, 32) for g in gallery)


def test_scenes_by_name_return_the_exact_images(client):
    from textok.data.scenes import parse_caption, render_scene
    from textok.explore import SCENE_EXAMPLES

    caption = SCENE_EXAMPLES["three objects"]
    scene, base, tex, table, made_from, status = client.predict(caption=caption, api_name="/scene_reconstruct")
    assert status == "" and made_from == caption and "| TexTok | the caption |" in table
    assert np.array_equal(np.asarray(Image.open(scene)), np.asarray(render_scene(parse_caption(caption), 32)))
    assert Image.open(tex).size == Image.open(base).size == (32, 32)
    edited = caption.replace("navy", "brown")
    own, swapped, target, table, status = client.predict(caption=caption, edited_caption=edited, api_name="/scene_edit")
    assert status == "" and "| edited scene (rendered) | the edited scene | ✓ |" in table
    assert np.asarray(Image.open(target))[0, 0].tolist() == [110, 70, 35]  # the brown background
    *_, status = client.predict(caption="a blue whale", api_name="/scene_reconstruct")
    assert "Scene caption: caption" in status and "error" in status


def test_an_animated_upload_says_which_frame_was_used(client, tmp_path):
    frames = [Image.new("RGB", (32, 32), c) for c in ("red", "blue", "green")]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100, loop=0)
    orig, *_, status = client.predict(image=gradio_client.handle_file(str(gif)), example=None, caption="",
                                      num_tokens="2", api_name="/reconstruct")
    assert "frame 1 of 3 used" in status and 'class="note"' in status
    assert np.asarray(Image.open(orig))[..., 0].min() > 200  # red: the first frame


def test_launch_prints_its_address_and_no_share_hint(served):
    demo, out, err = served
    assert f"serving on {demo.local_url}" in out and "share" not in out + err and "warning" not in err


@pytest.mark.parametrize("host,warns", [("127.0.0.1", False), ("localhost", False), ("::1", False),
                                        ("127.0.0.2", False), ("0.0.0.0", True), ("::", True),
                                        ("192.168.1.5", True), ("myhost.example", True)])
def test_host_warning_beyond_loopback(host, warns):
    w = host_warning(host)
    assert (w is not None) == warns
    if warns:
        assert w.count("\n") == 0 and host in w and "--host 127.0.0.1" in w
