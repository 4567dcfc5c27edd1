"""A feed served over HTTP on loopback for the tests: one file, with an ETag and a
Last-Modified, answering 304 to a request that brings the current ETag. Every request is
logged as a JSON line so a test can see what gazette asked for.

    python3 tests/http/feed_server.py --file FEED --log LOG     # prints "READY <port>"
"""

import argparse
import hashlib
import json
import os
import sys
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--file", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            with open(args.file, "rb") as f:
                body = f.read()
            etag = '"' + hashlib.sha1(body).hexdigest() + '"'
            modified = formatdate(os.path.getmtime(args.file), usegmt=True)
            asked = self.headers.get("If-None-Match")
            status = 304 if asked == etag else 200
            with open(args.log, "a") as log:
                log.write(json.dumps({"path": self.path, "if_none_match": asked,
                                      "if_modified_since": self.headers.get("If-Modified-Since"),
                                      "status": status}) + "\n")
            self.send_response(status)
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", modified)
            if status == 200:
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"READY {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
