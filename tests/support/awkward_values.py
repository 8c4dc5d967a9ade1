"""Values that cannot become text, for interpolation tests in this process and in a kernel."""


class BrokenText:
    """Its __str__ raises, with a message over two lines."""

    def __str__(self):
        raise RuntimeError("first line\nsecond line that must not show")


class EndlessText:
    """Its __str__ recurses until Python gives up."""

    def __str__(self):
        return str(self)
