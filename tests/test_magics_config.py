"""`%config LLMMagics.x = ...` works before `%load_ext llm_notebook` as after it (a real kernel)."""

from __future__ import annotations


from tests.magics_kernel import offline_kernel


kernel = offline_kernel()


def test_settings_made_before_loading_are_the_magics_settings(kernel):
    before = kernel.run("%config LLMMagics.plot_history = 2\n"
                        "%config LLMMagics.show_usage = False\n"
                        "%config LLMMagics.default_model = 'markov'\n"
                        "%config LLMMagics.remote_images = True\n"
                        "%config LLMMagics.max_image_pixels = 5000\n"
                        "%config LLMMagics.answer_timeout = 5.0\n"
                        "%config LLMMagics.cache = 'off'\n"
                        "%config LLMMagics.budget = 2.5")
    assert before.error is None
    kernel.run("%load_ext llm_notebook")
    mirrored = kernel.run("from llm_notebook import settings as s\n"
                          "print(s.remote_images, s.max_image_pixels, s.answer_timeout, s.cache, "
                          "s.budget)")
    assert mirrored.stream() == "True 5000 5.0 off 2.5\n"
    answer = kernel.run("%llm -o length 3 -o seed 1 the cat sat")
    [shown] = answer.displays()  # no usage table
    assert shown["metadata"]["llm_notebook"]["model"] == "markov"
    kernel.run("from IPython.display import display\nfrom PIL import Image\n"
               "for size in (10, 11, 12):\n    display(Image.new('RGB', (size, size)))")
    too_far = kernel.run("%llm -m echo -a @plot-3 hi", expect_error=True)
    # three were shown, two are kept: the line names the setting that keeps them
    assert too_far.error["traceback"] == [
        "AttachmentError: @plot-3 asks for the image 3 back, and 3 images have been shown, but "
        "LLMMagics.plot_history keeps only the newest 2: raise it with %config "
        "LLMMagics.plot_history = 3 (it counts the images shown from then on), or show the "
        "image again"]
    read = kernel.run("%config LLMMagics.plot_history")
    assert read.data("text/plain") == ["2"]


def test_settings_made_after_loading_take_effect_at_once(kernel):
    kernel.run("%config LLMMagics.show_usage = True\n%config LLMMagics.default_model = ''")
    assert len(kernel.run("%llm hi").displays()) == 2
    kernel.run("%config LLMMagics.plot_history = 5")
    assert kernel.run("%config LLMMagics.plot_history").data("text/plain") == ["5"]
