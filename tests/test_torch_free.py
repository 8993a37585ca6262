"""The exercise checker and the NumPy side of the companion never import torch: a lesson's
first `from companion.exercises import check` and every grader worker stay fast."""

import subprocess
import sys

TORCH_FREE = [
    "companion.exercises",
    "companion.cells",
    "companion.sizing",
    "companion.corpus",
    "companion.softmax",
    "companion.cifg",
    "companion.grader",
]


def test_importing_does_not_import_torch():
    code = (f"import sys, {', '.join(TORCH_FREE)}\n"
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))[:3])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]", f"importing {TORCH_FREE} loaded torch: {out.stdout}"


def test_the_probe_sees_torch_when_it_is_imported():
    """The probe above can fail: importing a torch-side module is reported."""
    code = ("import sys, companion.models\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "True"
