// tokens.mjs: connection tokens for the Centrifugo peer of bench/realtime_fanout_bench.sh. One
// HS256 JWT per line of USER_FILE (a user id a line, in order), claims {"sub": <user id>,
// "iat": now, "exp": now + TTL}, signed with SECRET; written one a line to stdout in the same
// order. Node's crypto only, no dependencies.
//   node tokens.mjs SECRET TTL_SECONDS USER_FILE > tokens
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";

const [secret, ttlArg, file] = process.argv.slice(2);
const ttl = Number(ttlArg);
if (!secret || !(ttl > 0) || !file) {
	console.error("usage: node tokens.mjs SECRET TTL_SECONDS USER_FILE");
	process.exit(2);
}
const b64url = (s) => Buffer.from(s).toString("base64url");
const head = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
const now = Math.floor(Date.now() / 1000);
const out = [];
for (const user of readFileSync(file, "utf8").split("\n")) {
	if (user.length === 0) continue;
	const body = b64url(JSON.stringify({ sub: user, iat: now, exp: now + ttl }));
	const sig = createHmac("sha256", secret).update(head + "." + body).digest("base64url");
	out.push(head + "." + body + "." + sig);
}
process.stdout.write(out.join("\n") + "\n");
