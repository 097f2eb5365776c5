"""Scripts run from a checkout (`python tools/NAME.py`); tests import them as `tools.NAME`."""
