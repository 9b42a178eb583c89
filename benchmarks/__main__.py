"""``python -m benchmarks [--quick] [--only B1,B2] [--out NAME]``."""

from benchmarks.run import main

if __name__ == "__main__":
    main()
