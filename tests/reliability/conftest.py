import sys
from pathlib import Path

# the test helpers (jobs, serving) live one folder up
sys.path.insert(0, str(Path(__file__).parents[1]))
