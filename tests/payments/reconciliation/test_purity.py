"""The reconciliation core stays free of the web, database and queue layers."""

from __future__ import annotations

import subprocess
import sys


def test_core_imports_no_flask_sqlalchemy_or_rq_of_its_own():
    code = (
        "import sys\n"
        "import payments.reconciliation.matching, payments.reconciliation.statements\n"
        "print(sorted(m for m in ('sqlalchemy', 'rq', 'flask_smorest', 'redis') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"
