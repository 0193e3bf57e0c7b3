"""The package's unit tests run on the source tree (python/src), with Debian's python3-pytest
and python3-xxhash; no network beyond loopback, no coordinator (tests/conformance has those)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
