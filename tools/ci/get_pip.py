"""Stand-in for the pip bootstrap script that ansible-test downloads from its own host.

That host is out of reach here; PyPI is not. ansible-test runs this file inside a new venv with
pip install options and the packages to install (``pip==X``): bootstrap the pip that Python
bundles (ensurepip), then let it install exactly what was asked, from PyPI.
"""

import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

# In a child process: ensurepip points PIP_CONFIG_FILE at /dev/null in its own environment, which
# would hide the machine's pip configuration (its CA bundle, its index) from the install below.
subprocess.check_call([sys.executable, "-m", "ensurepip"])
args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *args]))
