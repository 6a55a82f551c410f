import sys

from mlstream.cli import main

sys.exit(main())
