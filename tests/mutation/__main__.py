"""``python -m tests.mutation``: the mutation check's command line (see ``runner``)."""

import sys

from tests.mutation.runner import main

sys.exit(main())
