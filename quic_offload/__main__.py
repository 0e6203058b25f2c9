"""``python -m quic_offload`` runs the command line."""

import sys

from quic_offload.cli import main

sys.exit(main())
