# Loaded automatically by every Python subprocess the tests start (PYTHONPATH).
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import netguard  # noqa: E402

netguard.install()
