"""Attachments: type detection, content, ids, notebook objects and downscaling."""

import hashlib
import io
import json
import pathlib

import numpy as np
import pytest
from PIL import Image

from llm_notebook import Attachment, AttachmentError, get_model, settings
from llm_notebook.images import dimensions
from tests.support.file_server import serving


def png_bytes(size=(8, 4), mode="RGB"):
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def http_files():
    """A real HTTP server on loopback serving a PNG, a PDF, bytes known only by their header, a 404."""
    with serving({"/pic.png": (png_bytes((30, 20)), "image/png"),
                  "/doc": (b"%PDF-1.4\n%\xe2\xe3\n", "application/octet-stream"),
                  "/voice": (b"\x00\xff\x00\xfe", "audio/ogg; codecs=opus"),
                  "/blob": (b"\x00\xff\x00\xfe", "application/octet-stream")}) as (base, _):
        yield base


@pytest.mark.parametrize("make, expected", [
    (lambda: png_bytes(), "image/png"),
    (lambda: _jpeg(), "image/jpeg"),
    (lambda: b"%PDF-1.7\n1 0 obj\n", "application/pdf"),
    (lambda: b"\xff\xfb\x90\x64" + b"\0" * 400, "audio/mpeg"),
    (lambda: b"plain words", "text/plain"),
])
def test_resolve_type_detects_content(make, expected):
    assert Attachment(content=make()).resolve_type() == expected


def _jpeg():
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_explicit_type_is_normalized_and_wins():
    assert Attachment(type="audio/mp3", content=b"x").resolve_type() == "audio/mpeg"
    assert Attachment(type="image/png; charset=binary", content=b"x").resolve_type() == "image/png"


def test_undetectable_content_says_how_to_give_a_type():
    with pytest.raises(AttachmentError, match=r"Could not tell the content type of 4 bytes of content: "
                                              r"give it explicitly, e.g. Attachment\(type='image/png'"):
        Attachment(content=b"\x00\xff\x00\xfe").resolve_type()


def test_path_attachment_reads_file_and_ids_are_sha256(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(png_bytes())
    attachment = Attachment(path=str(path))
    assert attachment.resolve_type() == "image/png"
    assert attachment.content_bytes() == path.read_bytes()
    assert attachment.id() == hashlib.sha256(path.read_bytes()).hexdigest()
    url = Attachment(url="https://example.com/a.png")
    assert url.id() == hashlib.sha256(json.dumps({"url": "https://example.com/a.png"}).encode()).hexdigest()


def test_missing_file_is_a_clear_error(tmp_path):
    gone = Attachment(path=str(tmp_path / "gone.png"))
    with pytest.raises(AttachmentError, match=r"Cannot read attachment file .*gone.png: No such file"):
        gone.content_bytes()
    with pytest.raises(AttachmentError, match=r"No file at 'nope.png': give an existing file path, a URL or a variable"):
        Attachment.from_object("nope.png")
    with pytest.raises(AttachmentError, match=r"No file at '.*gone.png': give an existing file path"):
        Attachment.from_object(pathlib.Path(tmp_path / "gone.png"))


def test_url_content_is_fetched_over_http(http_files):
    attachment = Attachment(url=http_files + "/doc")
    assert attachment.resolve_type() == "application/pdf"  # from the bytes, not the header
    assert attachment.content_bytes().startswith(b"%PDF")
    picture = Attachment.from_object(http_files + "/pic.png")
    assert picture.url.endswith("/pic.png") and picture.resolve_type() == "image/png"
    assert dimensions(picture) == (30, 20)
    with pytest.raises(AttachmentError, match=r"Cannot fetch attachment http://127.0.0.1:\d+/nothing: HTTP 404"):
        Attachment(url=http_files + "/nothing").content_bytes()


def test_url_without_extension_and_undetectable_bytes_takes_the_served_type(http_files):
    assert Attachment(url=http_files + "/voice").resolve_type() == "audio/ogg"
    with pytest.raises(AttachmentError, match=r"Could not tell the content type of URL .*/blob: give it"):
        Attachment(url=http_files + "/blob").resolve_type()


def test_unreachable_url_is_a_clear_error():
    with pytest.raises(AttachmentError, match=r"Cannot fetch attachment http://127.0.0.1:9/x.png: "):
        Attachment(url="http://127.0.0.1:9/x.png").content_bytes()


def test_pil_image_becomes_png():
    attachment = Attachment.from_object(Image.new("RGBA", (5, 7)))
    assert attachment.type == "image/png" and dimensions(attachment) == (5, 7)
    cmyk = Attachment.from_object(Image.new("CMYK", (3, 3)))
    assert dimensions(cmyk) == (3, 3)


def test_matplotlib_figure_and_axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(2, 1), dpi=50)
    axes.plot([1, 2, 3])
    for obj in (figure, axes):
        attachment = Attachment.from_object(obj)
        assert attachment.resolve_type() == "image/png"
        assert dimensions(attachment)[0] > dimensions(attachment)[1]
    plt.close(figure)


@pytest.mark.parametrize("array, size", [
    (np.zeros((4, 6), dtype=np.uint8), (6, 4)),
    (np.ones((4, 6, 3), dtype=np.float32), (6, 4)),
    (np.zeros((4, 6, 4), dtype=np.uint8), (6, 4)),
    (np.full((2, 3), 200, dtype=np.int64), (3, 2)),
    (np.zeros((2, 3), dtype=bool), (3, 2)),
])
def test_numpy_images(array, size):
    attachment = Attachment.from_object(array)
    assert attachment.type == "image/png" and dimensions(attachment) == size


def test_float_array_values_scale_to_bytes():
    attachment = Attachment.from_object(np.full((1, 1, 3), 0.5))
    with Image.open(io.BytesIO(attachment.content)) as image:
        assert image.getpixel((0, 0)) == (128, 128, 128)


@pytest.mark.parametrize("array, message", [
    (np.zeros((2, 2, 2)), r"A numpy array of shape \(2, 2, 2\) is not an image: expected H×W, H×W×3 or H×W×4"),
    (np.zeros(5), r"shape \(5,\) is not an image"),
    (np.full((2, 2), 3.0), r"Float image arrays must hold values in \[0, 1\] \(this one spans 3 to 3, or holds NaN\): scale it"),
    (np.full((2, 2), 300), r"Integer image arrays must hold values in 0-255 \(this one spans 300 to 300\)"),
    (np.array([["a", "b"]]), r"A numpy array of dtype <U1 is not an image: use uint8, or floats in \[0, 1\]"),
])
def test_numpy_errors_name_the_problem(array, message):
    with pytest.raises(AttachmentError, match=message):
        Attachment.from_object(array)


def test_bytes_like_paths_and_ipython_image(tmp_path):
    png = png_bytes()
    for obj in (png, bytearray(png), memoryview(png), io.BytesIO(png)):
        assert Attachment.from_object(obj).content_bytes() == png
    path = tmp_path / "p.png"
    path.write_bytes(png)
    assert Attachment.from_object(path).path == str(path)
    assert Attachment.from_object(str(path)).path == str(path)
    from IPython.display import Image as IPyImage

    assert Attachment.from_object(IPyImage(data=png)).content_bytes() == png
    assert Attachment.from_object(IPyImage(filename=str(path))).resolve_type() == "image/png"


def test_unsupported_object_names_type_and_accepted_ones():
    import pandas as pd

    with pytest.raises(AttachmentError) as error:
        Attachment.from_object(pd.DataFrame({"a": [1]}))
    assert str(error.value) == (
        "Cannot attach an object of type pandas.DataFrame: accepted are PIL images, matplotlib "
        "figures and axes, numpy image arrays, bytes, io.BytesIO, files opened with 'rb', file "
        "paths, http(s) URLs and IPython.display.Image")
    with pytest.raises(AttachmentError, match="object of type int: accepted"):
        Attachment.from_object(42)


def test_large_images_are_downscaled_keeping_aspect(monkeypatch):
    big = Image.new("RGB", (4000, 1000))
    monkeypatch.setattr(settings, "max_image_edge", 800)
    assert dimensions(Attachment.from_object(big)) == (800, 200)
    assert dimensions(Attachment.from_object(big, max_edge=None)) == (4000, 1000)
    jpeg = io.BytesIO()
    big.save(jpeg, format="JPEG")
    smaller = Attachment.from_object(jpeg.getvalue(), max_edge=100)
    assert smaller.resolve_type() == "image/jpeg" and dimensions(smaller) == (100, 25)
    small = Attachment(content=png_bytes((10, 10)))
    assert small.downscaled(100) is small


def test_repr_shows_no_bytes():
    assert repr(Attachment(content=b"x" * 1000)) == "Attachment(type=None, content=<1000 bytes>)"


def test_model_prompt_accepts_notebook_objects_and_echo_reports_them():
    text = get_model("echo").prompt("look", attachments=[np.zeros((10, 20, 3), dtype=np.uint8),
                                                         b"%PDF-1.4\n"]).text()
    assert "1. `image/png`" in text and "20×10 px" in text
    assert "2. `application/pdf`, 9 bytes" in text


def test_model_rejects_unreadable_attachment_before_request(tmp_path):
    with pytest.raises(AttachmentError, match="Cannot read attachment file"):
        get_model("echo").prompt("x", attachments=[Attachment(path=str(tmp_path / "none.png"))])
