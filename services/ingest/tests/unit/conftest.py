"""Other services' unit folders also have a `fakes` module imported by its plain name (test
folders here are not packages): forget theirs before this folder's tests import ours."""
import sys

sys.modules.pop("fakes", None)
