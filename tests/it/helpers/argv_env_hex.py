# Prints its first argument and the variables HX_WEIRD and HX_\xff\xfe as hex bytes, so a test
# can check that non-UTF-8 arguments and environment arrive byte for byte.
import os
import sys

print("ARG", os.fsencode(sys.argv[1]).hex())
print("ENV", os.environb[b"HX_WEIRD"].hex(), os.environb[b"HX_\xff\xfe"].hex())
