// Verifying a vecmigrate webhook in Node, with the official Standard Webhooks library (npm
// `standardwebhooks`). A receiver calls `verify(body, headers)` with the raw body (a string or
// a Buffer, before any JSON parsing) and the request's headers; it returns the event, or throws
// when the signature, the id or the timestamp (five minutes either way) is wrong.
//
// Run as a script, it checks one delivery saved as two files (the tests do this):
//   VECMIGRATE_WEBHOOK_SECRET=whsec_... node verify.mjs HEADERS.json BODY
// prints the event's type and the job's status, or exits 1 saying why it refused it.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Webhook } from "standardwebhooks";

export function verify(body, headers) {
  return new Webhook(process.env.VECMIGRATE_WEBHOOK_SECRET).verify(body, headers);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const headers = JSON.parse(readFileSync(process.argv[2], "utf8"));
  const body = readFileSync(process.argv[3], "utf8");
  try {
    const event = verify(body, headers);
    console.log(event.type, event.data.job.status);
  } catch (e) {
    console.error(`refused: ${e.message}`);
    process.exit(1);
  }
}
