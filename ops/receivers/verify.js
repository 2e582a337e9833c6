// Verify certhook's x-infisical-signature in Node.js (no dependencies).
// Run as a receiver: CERTHOOK_SECRET=... node verify.js 9000
const crypto = require("node:crypto");
const http = require("node:http");

const TOLERANCE_MS = 5 * 60 * 1000;

// header: "t=<unix ms>,v1=<hex>[,v1=<hex>…]"; rawBody: the exact bytes received (Buffer).
// Accepts a match with any v1= entry and any secret (certhook signs with both secrets
// during a rotation).
function verifyInfisical(header, rawBody, secrets, nowMs = Date.now()) {
  if (!header) return false;
  let t = null;
  const sigs = [];
  for (const part of header.split(",")) {
    const [k, v] = part.trim().split("=", 2);
    if (k === "t") t = v;
    else if (k === "v1" && v) sigs.push(Buffer.from(v, "hex"));
  }
  if (t === null || sigs.length === 0 || Math.abs(nowMs - Number(t)) > TOLERANCE_MS) return false;
  for (const secret of secrets) {
    const expected = crypto.createHmac("sha256", secret).update(`${t}.`).update(rawBody).digest();
    if (sigs.some((s) => s.length === expected.length && crypto.timingSafeEqual(s, expected))) return true;
  }
  return false;
}

module.exports = { verifyInfisical };

if (require.main === module) {
  const secrets = [process.env.CERTHOOK_SECRET];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const ok = verifyInfisical(req.headers["x-infisical-signature"], body, secrets);
      if (!ok) {
        console.log("rejected");
        res.writeHead(401).end();
        return;
      }
      const event = JSON.parse(body.toString("utf8"));
      console.log(`verified ${event.type} ${event.id}`);
      res.writeHead(204).end();
    });
  });
  server.listen(Number(process.argv[2] || 9000), "127.0.0.1", () => {
    console.log(`listening on http://127.0.0.1:${server.address().port}`);
  });
}
