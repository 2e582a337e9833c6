"""Verify certhook's x-infisical-signature in Python (standard library only).

Run as a receiver: CERTHOOK_SECRET=... python3 verify.py 9000
"""
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

TOLERANCE_MS = 5 * 60 * 1000


def verify_infisical(header, raw_body, secrets, now_ms=None):
    """header: "t=<unix ms>,v1=<hex>[,v1=<hex>...]"; raw_body: the exact bytes received.

    Accepts a match with any v1= entry and any secret (certhook signs with both secrets
    during a rotation)."""
    if not header:
        return False
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    t, sigs = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            t = value
        elif key == "v1" and value:
            sigs.append(value)
    if t is None or not sigs or abs(now_ms - int(t)) > TOLERANCE_MS:
        return False
    for secret in secrets:
        expected = hmac.new(secret.encode(), t.encode() + b"." + raw_body, hashlib.sha256).hexdigest()
        if any(hmac.compare_digest(s, expected) for s in sigs):
            return True
    return False


class Receiver(BaseHTTPRequestHandler):
    secrets = [os.environ.get("CERTHOOK_SECRET", "")]

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        if not verify_infisical(self.headers.get("x-infisical-signature"), body, self.secrets):
            print("rejected", flush=True)
            self.send_response(401)
            self.end_headers()
            return
        event = json.loads(body)
        print(f"verified {event['type']} {event['id']}", flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = HTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 9000), Receiver)
    print(f"listening on http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()
