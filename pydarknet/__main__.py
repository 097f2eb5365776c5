"""`python -m pydarknet` (and `torchrun -m pydarknet`) run the CLI."""

import sys

from pydarknet.cli import main

sys.exit(main())
