import os
import sys
from pathlib import Path

# Nothing in the test suite may reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Compressors load in fp32 here whatever the CPU: the suite's answers and tolerances must not depend on
# whether this CPU has bf16 instructions. The tests of that automatic choice set or clear this themselves.
os.environ.setdefault("RAGCOMPRESS_DTYPE", "float32")

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent / "training"))
