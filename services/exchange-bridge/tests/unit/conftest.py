"""The unit folders of account and exchange-bridge each have a `fakes` module imported by its
plain name (test folders here are not packages): forget the other one's before this folder's
tests import their own."""
import sys

sys.modules.pop("fakes", None)
