"""Run the fastrnn command from a checkout: ``python cli.py train --task binary``."""
from fastrnn.cli import main

if __name__ == "__main__":
    main()
