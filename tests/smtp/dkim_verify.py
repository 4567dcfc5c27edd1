#!/usr/bin/env python3
"""Verify a message's DKIM-Signature with dkimpy, offline, for gazette's end-to-end tests.

    python3 tests/smtp/dkim_verify.py MESSAGE.eml 'v=DKIM1; k=rsa; p=MIIB...'

The second argument is the DNS TXT record of the signing key; every DNS lookup dkimpy makes
(`<selector>._domainkey.<domain>.`) is answered with it, so nothing touches the network. Exits 0
when the signature verifies, 1 when it does not (saying why on stderr), 2 on bad usage. Needs
dkimpy (`python3 -m pip install dkimpy`; Ed25519 signatures also need pynacl).
"""

from __future__ import annotations

import logging
import sys


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        import dkim
    except ImportError:
        print("dkimpy is missing: python3 -m pip install dkimpy", file=sys.stderr)
        return 2
    if "k=ed25519" in argv[2].replace(" ", ""):
        try:
            import nacl  # noqa: F401  dkimpy verifies ed25519 with it
        except ImportError:
            print("pynacl is missing (ed25519): python3 -m pip install pynacl", file=sys.stderr)
            return 2
    with open(argv[1], "rb") as f:
        message = f.read()
    record = argv[2].encode("ascii")
    asked: list[str] = []

    def dnsfunc(name, timeout=5):
        asked.append(name.decode() if isinstance(name, bytes) else str(name))
        return record

    # dkimpy says why a signature fails only through its logger.
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG, format="dkimpy: %(message)s")
    logger = logging.getLogger("dkim_verify")
    try:
        verifier = dkim.DKIM(message, logger=logger)
        ok = verifier.verify(dnsfunc=dnsfunc)
    except dkim.DKIMException as e:
        print(f"FAIL: {type(e).__name__}: {e} (DNS asked for {asked})", file=sys.stderr)
        return 1
    if ok:
        print(f"PASS (DNS asked for {asked})")
        return 0
    print(f"FAIL: the signature does not verify (DNS asked for {asked})", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
