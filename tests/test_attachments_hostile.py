"""Attachments a hostile notebook makes: each is one clear line, and nothing is read twice.

Through the Python API and through `%llm -a ...` in a real kernel: huge arrays, decompression
bombs, damaged images, objects that are no attachment, names that are no variable and no file,
files deleted while an answer streams, keys in URLs.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import json
import os
import warnings
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from PIL import Image

import llm_notebook
from llm_notebook import Attachment, AttachmentError, Model, Secret, settings
from llm_notebook.images import dimensions
from llm_notebook.references import resolve_attachment
from tests.magics_kernel import KernelNotebook
from tests.support.file_server import serving
from tests.support.hostile_images import (
    PPM_16_BYTES,
    PPM_BAD_MAXVAL,
    bomb_png,
    claiming_png,
    half_png,
    png_header,
    real_png,
)

SEND_UNREAD = "attach a complete image, or set max_image_edge to None to send it unread"


class DeletesItsAttachment(Model):
    """Deletes the attached file between two chunks of its answer, never reading it itself."""

    model_id = "deletes-its-attachment"
    attachment_types = {"image/png"}

    def execute(self, prompt, stream, response, conversation):
        yield "first "
        os.remove(prompt.attachments[0].path)
        yield "second"


# -- images too large ---------------------------------------------------------------------------

def test_an_array_over_the_pixel_limit_is_refused_before_it_is_encoded():
    assert settings.max_image_pixels == 100_000_000
    with pytest.raises(AttachmentError) as error:
        Attachment.from_object(np.zeros((14000, 14000), dtype=np.uint8))
    assert str(error.value) == (
        "This numpy array is 14,000×14,000 pixels (196,000,000), more than "
        "llm_notebook.settings.max_image_pixels (100,000,000): make it smaller first, or raise "
        "the setting")


def test_the_pixel_limit_is_the_setting(monkeypatch):
    monkeypatch.setattr(settings, "max_image_pixels", 100)
    with pytest.raises(AttachmentError, match=r"This numpy array is 11×10 pixels \(110\), more "
                                              r"than llm_notebook.settings.max_image_pixels \(100\)"):
        Attachment.from_object(np.zeros((10, 11), dtype=np.uint8))
    with pytest.raises(AttachmentError, match=r"This PIL image is 20×20 pixels \(400\)"):
        Attachment.from_object(Image.new("RGB", (20, 20)))
    assert dimensions(Attachment.from_object(np.zeros((10, 10), dtype=np.uint8))) == (10, 10)
    monkeypatch.setattr(settings, "max_image_pixels", None)
    assert dimensions(Attachment.from_object(np.zeros((10, 11), dtype=np.uint8))) == (11, 10)


def test_a_decompression_bomb_is_an_error_read_from_its_header_not_a_warning():
    """12000×12000 is over the package's limit and between pillow's warning and its error."""
    bomb = bomb_png(12000, 12000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(AttachmentError) as error:
            Attachment.from_object(bomb)
    assert str(error.value) == (
        f"The image from {len(bomb):,} bytes of content is 12,000×12,000 pixels (144,000,000), "
        "more than llm_notebook.settings.max_image_pixels (100,000,000): make it smaller first, "
        "or raise the setting")
    assert [str(w.message) for w in caught] == []
    huge = claiming_png(20000, 20000)  # past pillow's own error threshold
    with pytest.raises(AttachmentError, match=r"is 20,000×20,000 pixels \(400,000,000\), more than"):
        Attachment.from_object(huge)
    assert dimensions(Attachment(content=huge)) == (20000, 20000)


def test_pillow_own_limit_is_left_as_it_was():
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(AttachmentError):
        Attachment.from_object(claiming_png(20000, 20000))
    Attachment.from_object(real_png(3000, 100), max_edge=50)
    assert Image.MAX_IMAGE_PIXELS == before


# -- damaged images -----------------------------------------------------------------------------

@pytest.mark.parametrize("data, message", [
    (PPM_16_BYTES, ("Cannot read image/x-portable-pixmap from 16 bytes of content: image file is "
                    f"truncated (0 bytes not processed); {SEND_UNREAD}")),
    (PPM_BAD_MAXVAL, ("Cannot read image/x-portable-graymap from 16 bytes of content: maxval must "
                      f"be greater than 0 and less than 65536; {SEND_UNREAD}")),
    (half_png(), (f"Cannot read image/png from {len(half_png()):,} bytes of content: image file "
                  f"is truncated; {SEND_UNREAD}")),
    (png_header(40, 40), ("Cannot read image/png from 33 bytes of content: it is not an image of "
                          f"that type; {SEND_UNREAD}")),
])
def test_damaged_images_are_one_line_naming_the_problem(data, message):
    with pytest.raises(AttachmentError) as error:
        Attachment.from_object(data)
    assert str(error.value) == message
    assert dimensions(Attachment(content=data)) in (None, (4000, 4000), (300, 300), (40, 40))
    assert Attachment.from_object(data, max_edge=None).content_bytes() == data  # as it says


# -- objects that are no attachment -------------------------------------------------------------

def test_objects_that_are_no_attachment_are_named_with_what_is_accepted(tmp_path):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as writer:
        writer.writestr("a.txt", "hello")
    text_file = tmp_path / "notes.txt"
    text_file.write_text("hello")
    for obj, kind in [(zipfile.ZipFile(archive), "zipfile.ZipFile"), ((x for x in "ab"), "generator"),
                      ({"a": 1}, "dict")]:
        with pytest.raises(AttachmentError) as error:
            Attachment.from_object(obj)
        assert str(error.value).startswith(f"Cannot attach an object of type {kind}: accepted are "
                                           "PIL images")
    with open(text_file) as opened, pytest.raises(AttachmentError) as error:
        Attachment.from_object(opened)
    assert str(error.value) == ("Cannot attach a file opened as text (_io.TextIOWrapper): open "
                                "it with open(path, 'rb'), or attach its path")
    with open(text_file, "rb") as opened:
        assert Attachment.from_object(opened).content_bytes() == b"hello"
    with pytest.raises(AttachmentError, match=r"^Cannot attach this _io.BufferedReader: "
                                              r"ValueError: read of closed file"):
        Attachment.from_object(opened)


def test_an_object_whose_own_library_fails_is_one_line():
    lazy = Image.open(io.BytesIO(half_png()))  # pillow decodes it only when it is saved
    with pytest.raises(AttachmentError, match=r"^Cannot attach this PIL.PngImagePlugin."
                                              r"PngImageFile: OSError: image file is truncated"):
        Attachment.from_object(lazy)


# -- names after -a -----------------------------------------------------------------------------

class Box:
    @property
    def broken(self):
        raise RuntimeError("broken on purpose")


@pytest.fixture
def odd_paths(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    regular = tmp_path / "plain.txt"
    regular.write_text("words")
    return {"folder": tmp_path, "fifo": fifo, "under_a_file": regular / "inside.png"}


def names_error(what: str, namespace: dict | None = None) -> str:
    with pytest.raises(AttachmentError) as error:
        resolve_attachment(what, namespace or {}, None, 2048)
    assert "\n" not in str(error.value)
    return str(error.value)


def test_each_bad_name_is_one_line_saying_what_it_names(odd_paths):
    assert names_error(" x", {"xs": 1}) == (
        f"'x' is neither a variable nor a file: no variable 'x' is defined (did you mean xs?), and "
        f"there is no file {os.path.abspath('x')}. Define it, or give an existing file path, a "
        "URL or @plot")
    assert names_error("") == ("An empty name names no attachment: give a file path, a URL or a "
                               "variable")
    assert names_error("~no-such-user-here/x.png") == (
        "Cannot use the path '~no-such-user-here/x.png': no such user, or no home folder is known")
    assert names_error(f" {odd_paths['folder']} ") == (
        f"'{odd_paths['folder']}' is a folder: attach the files in it one by one")
    assert names_error(str(odd_paths["fifo"])) == (
        f"'{odd_paths['fifo']}' is a named pipe (FIFO), not a regular file")
    assert names_error(str(odd_paths["under_a_file"])) == (
        f"No file at '{odd_paths['under_a_file']}': a part of the path before the last / is a "
        "file, not a folder")
    assert names_error("box.broken", {"box": Box()}) == (
        "-a box.broken: .broken failed (RuntimeError: broken on purpose)")


@pytest.mark.timeout(20)  # reading a pipe nobody writes would wait for ever
def test_an_attachment_made_on_a_pipe_is_refused_not_read(odd_paths):
    attachment = Attachment(type="image/png", path=str(odd_paths["fifo"]))
    with pytest.raises(AttachmentError) as error:
        attachment.load()
    assert str(error.value) == (f"Cannot read attachment file {odd_paths['fifo']}: it is a named "
                                "pipe (FIFO), not a regular file")


def test_a_mistyped_variable_names_the_close_ones():
    message = names_error("plt_fig", {"plt_figure": 1, "fig": 2, "unrelated": 3, "_plt_fig": 4})
    assert message.startswith("'plt_fig' is neither a variable nor a file: no variable 'plt_fig' "
                              "is defined (did you mean plt_figure, fig?), and there is no file ")


def test_spaces_around_a_name_are_no_part_of_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plot.png").write_bytes(real_png(6, 4))
    picture = resolve_attachment("  plot.png ", {"plot": object()}, None, 2048)
    assert picture.path == str(tmp_path / "plot.png") and dimensions(picture) == (6, 4)
    assert resolve_attachment(" x ", {"x": b"%PDF-1.4\n"}, None, 2048).resolve_type() == "application/pdf"


# -- read once ----------------------------------------------------------------------------------

def test_load_keeps_the_bytes_type_and_id_when_the_file_changes_or_goes(tmp_path):
    path = tmp_path / "chart.png"
    original = real_png(8, 4)
    path.write_bytes(original)
    attachment = Attachment(type="image/png", path=str(path))
    assert attachment.load() is attachment
    path.write_bytes(b"something else entirely")
    assert attachment.content_bytes() == original
    path.unlink()
    assert attachment.id() == hashlib.sha256(original).hexdigest()
    assert attachment.metadata() == {"id": hashlib.sha256(original).hexdigest(),
                                     "type": "image/png", "size": len(original),
                                     "path": str(path), "url": None}
    assert dimensions(attachment) == (8, 4)


def test_a_file_deleted_while_the_answer_streams_changes_nothing(tmp_path):
    path = tmp_path / "chart.png"
    original = real_png(8, 4)
    path.write_bytes(original)
    response = DeletesItsAttachment().prompt("look", attachments=[Attachment(path=str(path))])
    assert response.text() == "first second"
    assert not path.exists() and response.status.value == "done"
    assert llm_notebook.log.flush(timeout=30)
    [row] = [r for r in llm_notebook.logs(5) if r["id"] == response.id]
    assert row["attachments"] == [{"id": hashlib.sha256(original).hexdigest(),
                                   "type": "image/png", "size": len(original)}]


def test_a_url_is_fetched_once_and_keeps_its_url_id():
    picture = real_png(5, 3)
    with serving({"/picture": (picture, "application/octet-stream")}) as (base, hits):
        url = base + "/picture"
        attachment = Attachment(url=url)
        assert attachment.load().resolve_type() == "image/png"
        assert dimensions(attachment) == (5, 3) and attachment.size() == len(picture)
        attachment.base64_content()
        named = Attachment(url=base + "/named.png")
        assert named.load().type == "image/png"  # its name tells its type: not fetched
    assert hits == ["/picture"]
    assert attachment.id() == hashlib.sha256(json.dumps({"url": url}).encode()).hexdigest()


def test_a_key_in_a_url_never_shows():
    key = Secret("sk-hostile-test-0123456789")
    attachment = Attachment(url=f"http://127.0.0.1:9/x.png?key={key}")
    assert repr(attachment) == "Attachment(type=None, url='http://127.0.0.1:9/x.png?key=***')"
    assert attachment.metadata()["url"] == "http://127.0.0.1:9/x.png?key=***"
    with pytest.raises(AttachmentError) as error:
        attachment.content_bytes()
    assert str(error.value).startswith("Cannot fetch attachment http://127.0.0.1:9/x.png?key=***: ")
    assert key not in str(error.value)


@pytest.mark.parametrize("url, reason", [
    ("http://[::1/a.png", "Invalid IPv6 URL"),
    ("http://example.com:99999/a.png", "Port out of range 0-65535"),
    ("http://exa mple.com/a.png", "it holds spaces or control characters (write a space as %20)"),
    ("https:///a.png", "give an address such as https://example.com/picture.png"),
])
def test_an_address_that_cannot_be_fetched_is_one_line(url, reason):
    with pytest.raises(AttachmentError) as error:
        Attachment.from_object(url)
    assert str(error.value).startswith("Cannot fetch attachment ")
    assert str(error.value).endswith(reason)
    with pytest.raises(AttachmentError, match="^Cannot fetch attachment "):
        Attachment(url=url).content_bytes()


# -- fuzzing ------------------------------------------------------------------------------------

_HEADERS = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xdb", b"GIF89a", b"GIF87a",
            b"BM", b"II*\x00", b"MM\x00*", b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"\x00\x00\x01\x00",
            b"8BPS", b"P4 ", b"P5 ", b"P6 ", b"%PDF-1.4\n", b"\xff\xfb\x90", b"ID3", b"OggS",
            b"<svg ", b"icns", b"qoif", b"\x00\x00\x00\x0cjP  "]


@st.composite
def image_like_bytes(draw):
    """An image format's signature, often a plausible header after it, then junk."""
    start = draw(st.sampled_from(_HEADERS))
    if start == _HEADERS[0] and draw(st.booleans()):
        start = png_header(draw(st.integers(0, 70000)), draw(st.integers(0, 70000)),
                           bit_depth=draw(st.sampled_from([1, 2, 4, 8, 16, 0, 3])),
                           colour_type=draw(st.sampled_from([0, 2, 3, 4, 6, 1, 9])))
    elif start.startswith(b"P") and draw(st.booleans()):
        start += b"%d %d %d\n" % (draw(st.integers(-2, 70000)), draw(st.integers(-2, 70000)),
                                  draw(st.integers(-1, 70000)))
    return start + draw(st.binary(max_size=600))


@hypothesis_settings(max_examples=300, deadline=1000, derandomize=True,
                     suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=600), image_like_bytes()))
def test_any_bytes_become_an_attachment_or_one_attachment_error(data):
    try:
        attachment = Attachment.from_object(data)
    except AttachmentError as error:
        assert str(error) and "\n" not in str(error)
        return
    assert isinstance(attachment, Attachment)
    dimensions(attachment)


# -- the same through %llm in a real kernel -----------------------------------------------------

SETUP = "\n".join([
    "%load_ext llm_notebook",
    "import io, os, zipfile",
    "import numpy as np",
    "import llm_notebook",
    "from llm_notebook import Model",
    inspect.getsource(DeletesItsAttachment),
    inspect.getsource(Box),
    "llm_notebook.register(DeletesItsAttachment())",
    "box = Box()",
    "plt_figure = 1",
    "big = np.zeros((14000, 14000), dtype=np.uint8)",
    "archive = io.BytesIO()",
    "zipfile.ZipFile(archive, 'w').close()",
    "zf = zipfile.ZipFile(archive)",
])


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("notebook")
    offline = {"LLM_NOTEBOOK_USER_PATH": str(workdir / "user"), "LLM_NOTEBOOK_LOAD_PLUGINS": ""}
    with contextlib.closing(KernelNotebook(workdir, env=offline)) as notebook:
        notebook.run(SETUP)
        yield notebook


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("files")
    (folder / "bomb.png").write_bytes(bomb_png(12000, 12000))
    (folder / "ppm16").write_bytes(PPM_16_BYTES)
    (folder / "half.png").write_bytes(half_png())
    (folder / "plain.txt").write_text("words")
    os.mkfifo(folder / "pipe")
    return folder


def the_one_line(kernel, line: str) -> str:
    run = kernel.run(line, expect_error=True)
    [entry] = run.error["traceback"]
    assert "\n" not in entry and "Traceback" not in entry and 'File "' not in entry
    assert "PIL." not in entry and "DecompressionBomb" not in entry  # nothing of pillow's inside
    assert run.stream("stderr") == ""  # no warning either
    return entry


def test_magic_images_too_large_or_damaged_are_one_line(kernel, files):
    assert the_one_line(kernel, "%llm -m echo -a big hi").startswith(
        "AttachmentError: This numpy array is 14,000×14,000 pixels (196,000,000), more than "
        "llm_notebook.settings.max_image_pixels (100,000,000)")
    assert the_one_line(kernel, f"%llm -m echo -a {files / 'bomb.png'} hi").startswith(
        f"AttachmentError: The image from file {files / 'bomb.png'} is 12,000×12,000 pixels")
    assert the_one_line(kernel, f"%llm -m echo -a {files / 'ppm16'} hi") == (
        f"AttachmentError: Cannot read image/x-portable-pixmap from file {files / 'ppm16'}: image "
        f"file is truncated (0 bytes not processed); {SEND_UNREAD}")
    assert the_one_line(kernel, f"%llm -m echo -a {files / 'half.png'} hi").startswith(
        f"AttachmentError: Cannot read image/png from file {files / 'half.png'}: image file is "
        "truncated")


def test_magic_objects_and_names_that_are_no_attachment_are_one_line(kernel, files):
    assert the_one_line(kernel, "%llm -m echo -a zf hi").startswith(
        "AttachmentError: Cannot attach an object of type zipfile.ZipFile: accepted are")
    assert the_one_line(kernel, '%llm -m echo -a " x" hi').startswith(
        "AttachmentError: 'x' is neither a variable nor a file: no variable 'x' is defined")
    assert the_one_line(kernel, "%llm -m echo -a plt_fig hi").startswith(
        "AttachmentError: 'plt_fig' is neither a variable nor a file: no variable 'plt_fig' is "
        "defined (did you mean plt_figure?)")
    assert the_one_line(kernel, "%llm -m echo -a ~no-such-user-here/x.png hi") == (
        "AttachmentError: Cannot use the path '~no-such-user-here/x.png': no such user, or no "
        "home folder is known")
    assert the_one_line(kernel, f"%llm -m echo -a {files} hi") == (
        f"AttachmentError: '{files}' is a folder: attach the files in it one by one")
    assert the_one_line(kernel, f"%llm -m echo -a {files / 'pipe'} hi") == (
        f"AttachmentError: '{files / 'pipe'}' is a named pipe (FIFO), not a regular file")
    assert the_one_line(kernel, f"%llm -m echo -a {files / 'plain.txt' / 'x.png'} hi").startswith(
        f"AttachmentError: No file at '{files / 'plain.txt' / 'x.png'}': a part of the path")
    assert the_one_line(kernel, "%llm -m echo -a box.broken hi") == (
        "AttachmentError: -a box.broken: .broken failed (RuntimeError: broken on purpose)")


def test_magic_answer_and_log_survive_the_file_deleted_while_streaming(kernel, tmp_path):
    path = tmp_path / "chart.png"
    original = real_png(8, 4)
    path.write_bytes(original)
    run = kernel.run(f"%llm -m deletes-its-attachment --no-usage -a {path} look")
    assert run.error is None and run.stream("stderr") == ""
    assert any("first second" in text for text in run.data("text/markdown"))
    assert not path.exists()
    logged = kernel.run("import json\nassert llm_notebook.log.flush(timeout=30)\n"
                        "print(json.dumps(llm_notebook.logs(1)[0]))")
    row = json.loads(logged.stream())
    assert (row["model"], row["status"], row["text"]) == ("deletes-its-attachment", "done",
                                                          "first second")
    assert row["attachments"] == [{"id": hashlib.sha256(original).hexdigest(),
                                   "type": "image/png", "size": len(original)}]
