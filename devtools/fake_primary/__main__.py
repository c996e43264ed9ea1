import sys

from devtools.fake_primary.cli import main

sys.exit(main())
