import sys

from spinv.cli import main

sys.exit(main())
