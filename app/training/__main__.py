"""`python3 -m app.training vae|denoiser|video ...`: the training command (app.training.cli)."""

import sys

from app.training.cli import main

sys.exit(main())
