import sys

from nirc.cli import main

sys.exit(main())
