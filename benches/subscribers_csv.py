"""Writes a subscriber CSV of N readers on the list `weekly` to stdout, for the benchmarks:

    python3 benches/subscribers_csv.py N > subscribers.csv
"""

import sys

n = int(sys.argv[1])
out = sys.stdout
out.write("email,name,lists\n")
for i in range(n):
    out.write(f"reader{i}@example.org,Reader {i},weekly\n")
