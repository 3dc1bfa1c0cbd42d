"""Records the checkout in the installed command (`air_quality_stream/_checkout.py`), so that
`air-quality` finds the project's folders from any directory without installing them."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildWithCheckout(build_py):
    """Build the package, adding `_checkout.py` with the path of the checkout built from."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "air_quality_stream" / "_checkout.py"
        target.write_text(
            '"""The checkout `pip install .` was run from (written by setup.py)."""\n\n'
            f"CHECKOUT = {str(HERE)!r}\n"
        )


setup(cmdclass={"build_py": BuildWithCheckout})
